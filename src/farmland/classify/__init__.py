"""Classification: soil samples and parcels into the three classes, with crop-sample
adjustment and the reason for each (domain.md §2–3)."""

from farmland.classify.crops import grade_crops
from farmland.classify.parcels import classify_parcels
from farmland.classify.samples import classify_samples
from farmland.classify.summary import class_area_table

__all__ = ["class_area_table", "classify_parcels", "classify_samples", "grade_crops"]
