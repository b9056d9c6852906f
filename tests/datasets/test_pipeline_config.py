"""Validation of the pipelines' configurations: a bad value raises a ConfigError naming its field."""

import pytest

from fastmri_recon.data.datasets import InferenceConfig, MulticoilConfig, SinglecoilConfig
from fastmri_recon.errors import ConfigError


def test_defaults_and_normalisation():
    config = SinglecoilConfig(accelerations=(4, 8), contrasts="AXT2", grid_shape=[320, 368])
    assert config.center_fractions == (0.08, 0.04)  # fastMRI's
    assert config.contrasts == ("AXT2",) and config.grid_shape == (320, 368)
    assert config.scale_factor == 1e6
    sampler = config.mask_sampler()
    assert sampler.mask_type == "random" and sampler.accelerations == [4, 8]
    assert SinglecoilConfig(accelerations=8, center_fractions=0.05).center_fractions == (0.05,)
    assert MulticoilConfig().sensitivity_maps is None and InferenceConfig().batch_size == 8


@pytest.mark.parametrize(
    "cls, field, value",
    [
        (SinglecoilConfig, "mask_type", "poisson"),
        (SinglecoilConfig, "accelerations", ()),
        (SinglecoilConfig, "accelerations", (6,)),  # no default center fraction
        (SinglecoilConfig, "accelerations", (4, 0.5)),
        (SinglecoilConfig, "center_fractions", (0.3,)),  # 0.3 * 4 >= 1: center alone over budget
        (SinglecoilConfig, "slice_selection", "middle"),
        (SinglecoilConfig, "edge_slices", -1),
        (SinglecoilConfig, "edge_slices", 0.5),
        (SinglecoilConfig, "edge_slices", True),
        (SinglecoilConfig, "contrasts", ()),
        (SinglecoilConfig, "contrasts", ("AXT2", 3)),
        (SinglecoilConfig, "batch_size", 0),
        (SinglecoilConfig, "batch_size", 2.0),
        (SinglecoilConfig, "grid_shape", (320,)),
        (SinglecoilConfig, "grid_shape", (320, 0)),
        (SinglecoilConfig, "scale_factor", 0.0),
        (SinglecoilConfig, "scale_factor", float("inf")),
        (SinglecoilConfig, "seed", -1),
        (SinglecoilConfig, "skip_bad_files", "yes"),
        (MulticoilConfig, "sensitivity_maps", "sense"),
        (MulticoilConfig, "acs_threshold", 1.0),
        (InferenceConfig, "batch_size", -2),
        (InferenceConfig, "sensitivity_maps", "walsh"),
    ],
)
def test_bad_values_name_their_field(cls, field, value):
    with pytest.raises(ConfigError, match=field):
        cls(**{field: value})
