"""Cross-entropy losses and their gradients for NumPy arrays.

Four losses, binary or categorical, from logits or from probabilities, with the same
options and one reduction rule:

- :func:`binary_cross_entropy`
- :func:`binary_cross_entropy_with_logits`
- :func:`categorical_cross_entropy`
- :func:`categorical_cross_entropy_with_logits`

and the focal losses, with the same options and the focusing exponent ``gamma``:

- :func:`binary_focal_loss`
- :func:`binary_focal_loss_with_logits`
- :func:`categorical_focal_loss`
- :func:`categorical_focal_loss_with_logits`

The losses with logits return the diagonal of the Hessian too (``return_hess=True``).

Large inputs are spread over threads; :func:`get_num_threads`, :func:`set_num_threads`
and :func:`num_threads` control how many. Probability rows that do not sum to 1 give a
:class:`ProbabilitySumWarning`. :func:`log_loss` takes scikit-learn's arguments: labels
of any kind first, then probabilities. The submodule :mod:`crossentropy.objectives`
makes custom objectives for XGBoost and LightGBM of the losses with logits.
"""

from . import objectives
from ._binary import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    binary_focal_loss,
    binary_focal_loss_with_logits,
)
from ._categorical import (
    categorical_cross_entropy,
    categorical_cross_entropy_with_logits,
    categorical_focal_loss,
    categorical_focal_loss_with_logits,
)
from ._log_loss import log_loss
from ._threads import get_num_threads, num_threads, set_num_threads
from ._validation import ProbabilitySumWarning

__all__ = [
    "ProbabilitySumWarning",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "binary_focal_loss",
    "binary_focal_loss_with_logits",
    "categorical_cross_entropy",
    "categorical_cross_entropy_with_logits",
    "categorical_focal_loss",
    "categorical_focal_loss_with_logits",
    "get_num_threads",
    "log_loss",
    "num_threads",
    "objectives",
    "set_num_threads",
]

__version__ = "0.1.0"
