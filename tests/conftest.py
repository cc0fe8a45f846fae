import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("ci", deadline=None, print_blob=True)
settings.load_profile("ci")


@pytest.fixture(scope="session")
def gaussian_tables():
    """CompressAI's GaussianConditional tables for its default 64-scale table (precision 16)."""
    from compressai.entropy_models import GaussianConditional
    from compressai.models.google import get_scale_table

    gc = GaussianConditional(None)
    gc.update_scale_table(get_scale_table())
    return (
        gc._quantized_cdf.numpy().astype(np.int32),
        gc._cdf_length.numpy().astype(np.int32),
        gc._offset.numpy().astype(np.int32),
    )
