/*
 * How many threads a call starts.  The process's usable CPUs (its affinity
 * mask and cgroup CPU quota, measured by fastsoftmax/_threads.py at import
 * and handed over with fsm_set_usable_cpus) are a ceiling for every call,
 * whatever it asks for: threads beyond the CPUs only add switching, GNU
 * libgomp keeps every thread it starts for the life of the process, and a
 * failed thread creation there ends the process.  Below the ceiling the
 * OpenMP default of the calling thread (OMP_NUM_THREADS, threadpoolctl)
 * applies to calls that do not pass a count.
 */
#include "fastsoftmax.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Set once at import, before any computation; 0 until then. */
static int fsm_usable = 0;

int fsm_openmp_enabled(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int fsm_omp_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void fsm_set_usable_cpus(int cpus) { fsm_usable = cpus > 0 ? cpus : 1; }

int fsm_usable_cpus(void) {
    if (fsm_usable > 0) return fsm_usable;
#ifdef _OPENMP
    return omp_get_num_procs();  /* not configured: the runtime's count (affinity) */
#else
    return 1;
#endif
}

int fsm_limit_threads(int requested) {
    int usable = fsm_usable_cpus();
    if (requested < 1) return 1;
    return requested < usable ? requested : usable;
}

int fsm_default_num_threads(void) { return fsm_limit_threads(fsm_omp_max_threads()); }

/* Threads worth starting for this much work (the plan may cap it further). */
int fsm_thread_count(size_t elements, int max_threads) {
    if (!fsm_openmp_enabled()) return 1;
    int threads = max_threads > 0 ? fsm_limit_threads(max_threads) : fsm_default_num_threads();
    size_t by_work = elements / FSM_MIN_ELEMENTS_PER_THREAD;
    if ((size_t)threads > by_work) threads = by_work > 0 ? (int)by_work : 1;
    return threads;
}
