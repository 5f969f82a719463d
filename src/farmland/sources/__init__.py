"""Where the metals come from (issue 17): local hot spots and source apportionment.

- :mod:`~farmland.sources.matrix`: concentrations, detection limits and EPA PMF
  uncertainties of soil samples (:func:`sample_matrix`);
- :mod:`~farmland.sources.hotspots`: Getis–Ord Gi* hot/cold spots and local Moran's I
  clusters at the sample points (:func:`local_hotspots`);
- :mod:`~farmland.sources.pmf`: Positive Matrix Factorisation, EPA PMF 5.0 style
  (:class:`PMF`), solved by :mod:`~farmland.sources.pmf_solver`;
  :mod:`~farmland.sources.pmf_uncertainty`: factor-count diagnostics, factor matching and
  the bootstrap of the profiles;
- :mod:`~farmland.sources.apcs`: PCA / APCS-MLR (:class:`APCS`);
- :mod:`~farmland.sources.synthetic`: soil data with known sources, for tests and
  benchmarks.
"""

from farmland.sources.apcs import APCS, varimax
from farmland.sources.hotspots import (
    HOTSPOT_COLUMNS,
    fdr_bh,
    knn_neighbours,
    local_hotspots,
    local_statistics,
)
from farmland.sources.matrix import (
    METALS,
    SampleMatrix,
    detection_limits,
    epa_uncertainty,
    sample_matrix,
)
from farmland.sources.pmf import PMF
from farmland.sources.pmf_uncertainty import (
    BootstrapResult,
    bootstrap_profiles,
    choose_factor_count,
    factor_diagnostics,
    match_factors,
    profile_correlations,
)
from farmland.sources.synthetic import SOURCE_PROFILES, synthetic_mixture, synthetic_samples

__all__ = ["APCS", "HOTSPOT_COLUMNS", "METALS", "PMF", "SOURCE_PROFILES", "BootstrapResult",
           "SampleMatrix", "bootstrap_profiles", "choose_factor_count", "detection_limits",
           "epa_uncertainty", "factor_diagnostics", "fdr_bh", "knn_neighbours",
           "local_hotspots", "local_statistics", "match_factors", "profile_correlations",
           "sample_matrix", "synthetic_mixture", "synthetic_samples", "varimax"]
