"""Ideal (oracle) time-frequency masks: the ceiling of mask-based separation on given data."""
import torch

MASK_KINDS = ("ibm", "irm", "psm")
EPS = 1e-8


def oracle_masks(mix_spec, src_spec, kind):
    """Masks (C, T, F) from the mixture STFT (T, F) and the reference STFTs (C, T, F).

    ibm: 1 on the dominant source's bins; irm: magnitude ratio |S_c| / sum_c |S_c|;
    psm: truncated phase-sensitive mask clamp(|S_c| cos(theta_c - theta_X) / |X|, 0, 1).
    """
    src_mag = src_spec.abs()
    if kind == "ibm":
        dominant = src_mag.argmax(dim=0, keepdim=True)
        return (torch.arange(src_spec.shape[0]).view(-1, 1, 1) == dominant).to(src_mag.dtype)
    if kind == "irm":
        return src_mag / src_mag.sum(dim=0, keepdim=True).clamp_min(EPS)
    if kind == "psm":
        # Re(S conj(X)) / |X|^2 = |S| cos(theta_S - theta_X) / |X|
        ratio = (src_spec * mix_spec.conj()).real / mix_spec.abs().square().clamp_min(EPS)
        return ratio.clamp(0.0, 1.0)
    raise ValueError(f"unknown mask '{kind}': use one of {', '.join(MASK_KINDS)}")
