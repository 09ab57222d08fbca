"""The GALLON loss terms: what the student learns from the GNN teacher and from the LLM prior.

Two kinds of term, each available for either source and either task type:
- logits: KL between temperature-softened Bernoulli outputs (classification) or MSE
  between outputs (regression, standardised units);
- representations: MSE between the student's pooled vector (projected when widths differ)
  and the source's, which are fixed targets so the term cannot collapse.
"paper" picks logits for classification and representations for regression (METHOD.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional


@dataclass(frozen=True)
class Guidance:
    """What one source (teacher or prior) says about every molecule, in model space."""

    outputs: Tensor
    representations: Tensor
    weight: float
    available: Tensor | None = None
    """Molecules the source has something to say about (e.g. those with an LLM description); None = all."""


def resolve_terms(terms: str, task_type: str) -> tuple[bool, bool]:
    """(use logits, use representations) for a `distill.terms` setting."""
    if terms == "paper":
        return task_type == "classification", task_type == "regression"
    return terms in ("logits", "both"), terms in ("representations", "both")


def logit_distance(student: Tensor, source: Tensor, task_type: str, temperature: float) -> Tensor:
    if task_type == "regression":
        return functional.mse_loss(student, source)
    student, source = student / temperature, source / temperature
    p_source = torch.sigmoid(source)
    kl = p_source * (functional.logsigmoid(source) - functional.logsigmoid(student)) + (1 - p_source) * (
        functional.logsigmoid(-source) - functional.logsigmoid(-student)
    )
    return kl.mean() * temperature**2


class DistillationGuide(nn.Module):
    """Extra loss for the student on the molecules it trains on; its projections train with the student."""

    def __init__(
        self, student_width: int, sources: list[Guidance], task_type: str, terms: str, temperature: float
    ) -> None:
        super().__init__()
        self.sources = [source for source in sources if source.weight > 0]
        self.task_type = task_type
        self.temperature = temperature
        self.use_logits, self.use_representations = resolve_terms(terms, task_type)
        self.projections = nn.ModuleList(
            nn.Identity()
            if source.representations.shape[1] == student_width
            else nn.Linear(student_width, source.representations.shape[1])
            for source in self.sources
        )

    def forward(self, output: Tensor, representation: Tensor, indices: Tensor) -> Tensor:
        loss = output.new_zeros(())
        for source, projection in zip(self.sources, self.projections, strict=True):
            rows = slice(None) if source.available is None else source.available[indices]
            if source.available is not None and not rows.any():
                continue
            if self.use_logits:
                loss = loss + source.weight * logit_distance(
                    output[rows], source.outputs[indices][rows], self.task_type, self.temperature
                )
            if self.use_representations:
                loss = loss + source.weight * functional.mse_loss(
                    projection(representation[rows]), source.representations[indices][rows]
                )
        return loss
