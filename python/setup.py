# Pure Python (ctypes): no compiler needed. `pip install ./python` installs it
# offline with Debian's pip and setuptools; libclip_surgery.so is found
# through CLIP_SURGERY_LIB, next to the package, or after `cmake --install`.
from setuptools import setup

setup(name="clip_surgery", version="0.1.0", description="CLIP Surgery (ctypes over libclip_surgery)",
      packages=["clip_surgery"], install_requires=["numpy"], python_requires=">=3.8")
