"""Mult-DAE: the denoising auto-encoder of Liang et al. (WWW 2018), Sec. 2.3.

Same tanh MLP and multinomial likelihood as :mod:`genrec.models.multvae`, but the code is
deterministic (no KL term, no annealing): the loss is
``-sum_i x_ui log softmax(f(g(dropout(x_u / ||x_u||))))_i`` (paper Eq. 2 with the
denoising corruption of Sec. 2.3). The reference code adds an L2 penalty ``lam = 0.01`` on
the weights; here use ``weight_decay`` (AdamW's decoupled decay, not the same scale).
Fold-in scoring and the behaviour for empty rows / unseen items are those of Mult-VAE.
"""

from __future__ import annotations

from dataclasses import dataclass

from genrec.config import field
from genrec.errors import ConfigError
from genrec.models.multvae import MultVAE
from genrec.models.neural import NeuralConfig
from genrec.registry import register_model


@dataclass(frozen=True)
class MultDAEConfig(NeuralConfig):
    """Config of :class:`MultDAE`."""

    # default search space of `genrec tune` (docs/tuning.md); a class attribute, no field
    SEARCH_SPACE = {
        "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.7},
        "dims": {"type": "categorical", "choices": [[200], [600, 200], [600, 100]]},
        "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True},
    }

    batch_size: int = field(500, "users per batch (paper: 500)")
    grad_clip: float = field(0.0, "clip the gradient norm (0 = off; the paper does not clip)")
    dims: tuple[int, ...] = field(
        (600, 200), "encoder widths; the last is the code size (decoder mirrors them)"
    )
    dropout: float = field(0.5, "input dropout on the normalised row (paper: 0.5)")
    sparse_input: bool = field(
        True,
        "compute the first layer from the row's items only (exact, no (B, n_items) product; "
        "CPU and CUDA, elsewhere dense); False: the dense product",
    )

    def validate(self) -> None:
        super().validate()
        if not self.dims or any(d <= 0 for d in self.dims):
            raise ConfigError(f"MultDAEConfig.dims must be positive ints, got {self.dims}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"MultDAEConfig.dropout must be in [0, 1), got {self.dropout}")


@register_model("multdae")
class MultDAE(MultVAE):
    """Mult-DAE (Liang et al. 2018, Sec. 2.3): Mult-VAE's network with a deterministic code."""

    summary = (
        "Denoising auto-encoder of the user's items, multinomial likelihood (Liang et al. 2018)."
    )

    config_class = MultDAEConfig
    config: MultDAEConfig  # type: ignore[assignment]
    variational = False
