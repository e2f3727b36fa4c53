"""GD102: decomposed BatchNorm over batch moments."""

import pytest

import graphs
from helpers import findings_of


@pytest.mark.parametrize(
    ("name", "layers"),
    [("slim_unfused_named_statistics", 2), ("slim_unfused_inline_updates", 2), ("keras3_cnn", 2),
     ("keras3_mobilenet_v1", 27)],
)
def test_every_batch_moments_batchnorm_is_reported(build, write, name, layers):
    pair = build(name)
    found = findings_of(write(pair.training), "GD102")
    assert len(found) == layers
    assert all(f.fix is not None for f in found)
    assert findings_of(write(pair.inference, "inference.pb")) == []


def test_per_sample_normalizations_are_not_reported(write):
    import zoo

    pair = zoo.keras_pair(zoo.keras_per_sample_norms(), (16, 16, 8))
    assert findings_of(write(pair.training)) == []


@pytest.mark.parametrize("body", [graphs.global_average_pool, graphs.instance_moments_normalization])
def test_reductions_over_spatial_axes_only_are_not_reported(write, body):
    assert findings_of(write(graphs.build(body, (None, 8, 8, 3)))) == []


def test_keras3_statistics_come_from_the_layers_variable_reads(build, write):
    found = findings_of(write(build("keras3_cnn").training), "GD102")
    assert all("Keras 3" in f.fix.summary for f in found)


def test_no_fix_without_statistics(build, write):
    import zoo

    pair = zoo.tf1_pair(zoo.slim_conv_stack(fused=False), (16, 16, 3))  # frozen for the output only
    found = findings_of(write(pair.training), "GD102")
    assert len(found) == 2 and all(f.fix is None and "not in this graph" in f.unfixable for f in found)
