"""pacsguard: privilege management, access control, audit and threat detection for PACS.

See ARCHITECTURE.md for the model (ISO/TS 22600 zones, roles, agreements) and the flow of
a request: authenticate -> decide -> archive -> audit -> monitor.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
