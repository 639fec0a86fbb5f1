"""reviewer: three-pass code review with Claude.

The library core runs source -> diff -> passes -> findings -> publish; `reviewer.cli`
is a thin click layer over it. Import `review` from `reviewer.engine` to use it
from Python.
"""

__version__ = "0.1.0"
