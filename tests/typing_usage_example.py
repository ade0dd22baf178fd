"""Typical use of the public API, checked by mypy (tests/test_typing.py):
the stubs must accept all of it."""
import numpy as np
from numpy.typing import NDArray

import fastsoftmax

x: NDArray[np.float32] = np.zeros((4, 10), dtype=np.float32)
p: NDArray[np.float32] = fastsoftmax.softmax(x)
lp = fastsoftmax.log_softmax(x, axis=(0, 1), num_threads=2)
fastsoftmax.softmax(x, out=x)
fastsoftmax.softmax([1.0, 2.0], axis=None, temperature=0.5)
fastsoftmax.log_softmax(x, base=2.0, where=x > 0)
total = fastsoftmax.logsumexp(x, -1, keepdims=True)
g = fastsoftmax.softmax_backward(np.ones_like(p), p)
g2 = fastsoftmax.log_softmax_backward(np.ones_like(lp), lp, axis=0)
loss = fastsoftmax.cross_entropy(x, np.array([1, 2, 3, 0]))
loss2, grad = fastsoftmax.cross_entropy(x, np.array([1, 2, 3, 0]), reduction="sum", return_grad=True)
shape: tuple[int, ...] = grad.shape
loss3, grad3 = fastsoftmax.cross_entropy(x, np.array([2, 0, 1, 3]), return_grad=True, grad_out=x)
fastsoftmax.set_num_threads(2)
fastsoftmax.set_num_threads(None)
threads: int = fastsoftmax.get_num_threads()
config: dict[str, object] = fastsoftmax.get_config()
fastsoftmax.show_config()
version: str = fastsoftmax.__version__
