"""StyleTalker's parts: the volume-preserving sequence flow of its prior."""

from __future__ import annotations

import torch
from conftest import optimise

from talkinghead.nn.flows import SequenceFlow


def _random_flow(dim: int = 4, condition: int = 3) -> SequenceFlow:
    torch.manual_seed(0)
    flow = SequenceFlow(dim, condition, hidden=8, steps=3).double()
    with torch.no_grad():  # away from the identity it starts as
        for p in flow.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return flow


def test_sequence_flow_is_exactly_invertible() -> None:
    flow = _random_flow()
    x, c = torch.randn(2, 7, 4, dtype=torch.float64), torch.randn(2, 7, 3, dtype=torch.float64)
    y = flow(x, c)
    assert (y - x).abs().max() > 0.1  # it does something
    assert torch.allclose(flow.inverse(y, c), x, atol=1e-10)
    assert torch.allclose(flow(flow.inverse(x, c), c), x, atol=1e-10)


def test_sequence_flow_preserves_volume() -> None:
    flow = _random_flow()
    c = torch.randn(1, 3, 3, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: flow(v.view(1, 3, 4), c).reshape(-1),
                                             torch.randn(12, dtype=torch.float64))
    sign, logdet = torch.linalg.slogdet(jac)
    assert sign != 0 and abs(logdet.item()) < 1e-9


def test_sequence_flow_is_causal_and_learns() -> None:
    flow = _random_flow()
    x, c = torch.randn(1, 6, 4, dtype=torch.float64), torch.randn(1, 6, 3, dtype=torch.float64)
    changed = x.clone()
    changed[:, 4:] += 1.0
    assert torch.allclose(flow(x, c)[:, :4], flow(changed, c)[:, :4])  # frame t never sees later frames
    data = torch.randn(64, 5, 4, dtype=torch.float64) * torch.tensor([0.5, 2.0, 1.0, 1.0], dtype=torch.float64) + 3
    cond = torch.zeros(64, 5, 3, dtype=torch.float64)
    losses = optimise(flow, lambda: 0.5 * flow.inverse(data, cond).pow(2).mean(), steps=150, lr=0.02)
    assert losses[-1] < 0.3 * losses[0]  # the base-side negative log-likelihood (log-det is 0)
