"""Archives behind pacsguard: the Archive protocol, DICOMweb adapter, embedded store."""
