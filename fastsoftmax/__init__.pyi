"""Type stubs for the public API of fastsoftmax (the compiled functions
carry no annotations of their own)."""
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

__version__: str

_Axis = int | tuple[int, ...] | None
_Reduction = Literal["mean", "sum", "none"]

def softmax(
    x: ArrayLike,
    axis: _Axis = ...,
    *,
    out: NDArray[Any] | None = ...,
    num_threads: int | None = ...,
    temperature: float | None = ...,
    base: float | None = ...,
    where: ArrayLike | None = ...,
) -> NDArray[Any]: ...
def log_softmax(
    x: ArrayLike,
    axis: _Axis = ...,
    *,
    out: NDArray[Any] | None = ...,
    num_threads: int | None = ...,
    temperature: float | None = ...,
    base: float | None = ...,
    where: ArrayLike | None = ...,
) -> NDArray[Any]: ...
def logsumexp(
    x: ArrayLike,
    axis: _Axis = ...,
    *,
    b: ArrayLike | None = ...,
    keepdims: bool = ...,
    return_sign: bool = ...,
    out: NDArray[Any] | None = ...,
    where: ArrayLike | None = ...,
    num_threads: int | None = ...,
) -> Any: ...
def softmax_backward(
    grad: ArrayLike,
    y: ArrayLike,
    axis: _Axis = ...,
    *,
    out: NDArray[Any] | None = ...,
    num_threads: int | None = ...,
) -> NDArray[Any]: ...
def log_softmax_backward(
    grad: ArrayLike,
    y: ArrayLike,
    axis: _Axis = ...,
    *,
    out: NDArray[Any] | None = ...,
    num_threads: int | None = ...,
) -> NDArray[Any]: ...
@overload
def cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    axis: int = ...,
    *,
    reduction: _Reduction = ...,
    label_smoothing: float = ...,
    return_grad: Literal[False] = ...,
    num_threads: int | None = ...,
    grad_out: None = ...,
) -> Any: ...
@overload
def cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    axis: int = ...,
    *,
    reduction: _Reduction = ...,
    label_smoothing: float = ...,
    return_grad: Literal[True],
    num_threads: int | None = ...,
    grad_out: NDArray[Any] | None = ...,
) -> tuple[Any, NDArray[Any]]: ...
def get_config() -> dict[str, Any]: ...
def show_config() -> None: ...
def set_num_threads(num_threads: int | np.integer[Any] | None) -> None: ...
def get_num_threads() -> int: ...

__all__: list[str]
