"""CI job 3: the fastsoftmax this Python imports is the installed, repaired
wheel: its extension lies in the venv's site-packages, not in a checkout, and
the OpenMP runtime loaded with it is the copy auditwheel put in the wheel
(fastsoftmax.libs/), not the system's libgomp.  Run from outside the checkout."""
import sysconfig

import threadpoolctl

import fastsoftmax
from fastsoftmax import _core

site = sysconfig.get_paths()["platlib"]
print("fastsoftmax:", fastsoftmax.__file__)
print("extension:  ", _core.__file__)
assert _core.__file__.startswith(site), f"the extension is not the one installed in {site}"
omp = [lib["filepath"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "openmp"]
print("OpenMP:     ", ", ".join(omp))
assert omp and all("/fastsoftmax.libs/" in path for path in omp), "OpenMP is not the wheel's copy"
