/* FSM_ALWAYS_INLINE: inline, and inlined even where the compiler's
 * heuristics would call the function out of line (which keeps a loop that
 * calls it from being vectorised). */
#ifndef FSM_INLINE_H
#define FSM_INLINE_H

#if defined(__GNUC__) || defined(__clang__)
#define FSM_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define FSM_ALWAYS_INLINE inline
#endif

#endif
