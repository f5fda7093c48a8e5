"""The synthetic DICOM studies of ``pacsguard.archives.synthetic``, under the name the
tests have always imported them by."""

from pacsguard.archives.synthetic import SOP_CLASS, SyntheticStudy, make_instance, make_study

__all__ = ["SOP_CLASS", "SyntheticStudy", "make_instance", "make_study"]
