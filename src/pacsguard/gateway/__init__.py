"""DICOMweb and DIMSE front ends, exports and share links."""
