"""TuiTalk: anonymous chat for terminals and browsers that keeps working while parts fail.

The protocol (:mod:`tuitalk.protocol`), the sanitiser (:mod:`tuitalk.sanitize`) and the
client core (:mod:`tuitalk.client`) are stdlib only and run unchanged in Pyodide.
"""

__version__ = "0.1.0"
