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
  benchmarks;
- :mod:`~farmland.sources.clusters`: contiguous class-2/3 land and its element signature
  (:func:`contaminated_clusters`);
- :mod:`~farmland.sources.network`, :mod:`~farmland.sources.wind`: the river network below
  an outfall (:class:`FlowNetwork`) and the downwind share of a wind rose;
- :mod:`~farmland.sources.candidates`: the ranked candidate sources of each cluster
  (:func:`rank_candidates`), and :mod:`~farmland.sources.confirm` the samples to confirm them;
- :mod:`~farmland.sources.factors` and :mod:`~farmland.sources.analysis`: the whole
  ``farmland sources`` step (:func:`analyse_sources`).
"""

from farmland.sources.analysis import SourcesResult, analyse_sources
from farmland.sources.apcs import APCS, varimax
from farmland.sources.candidates import EvidenceLayers, RankingRule, rank_candidates
from farmland.sources.clusters import Clusters, contaminated_clusters
from farmland.sources.confirm import ConfirmRule, confirmation_samples
from farmland.sources.factors import FactorSummary, factor_analysis
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
from farmland.sources.network import FlowNetwork
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
from farmland.sources.wind import bearing_deg, downwind_share

__all__ = [
    "APCS",
    "HOTSPOT_COLUMNS",
    "METALS",
    "PMF",
    "SOURCE_PROFILES",
    "BootstrapResult",
    "Clusters",
    "ConfirmRule",
    "EvidenceLayers",
    "FactorSummary",
    "FlowNetwork",
    "RankingRule",
    "SampleMatrix",
    "SourcesResult",
    "analyse_sources",
    "bearing_deg",
    "bootstrap_profiles",
    "choose_factor_count",
    "confirmation_samples",
    "contaminated_clusters",
    "detection_limits",
    "downwind_share",
    "epa_uncertainty",
    "factor_analysis",
    "factor_diagnostics",
    "fdr_bh",
    "knn_neighbours",
    "local_hotspots",
    "local_statistics",
    "match_factors",
    "profile_correlations",
    "rank_candidates",
    "sample_matrix",
    "synthetic_mixture",
    "synthetic_samples",
    "varimax",
]
