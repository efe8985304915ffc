"""Ideal (oracle) time-frequency masks: the ceiling of mask-based separation on given data.

They are the training targets of nnet/losses.py turned into masks, so oracle and training share
one definition of each.
"""

from nnet import losses

MASK_KINDS = ("ibm", "irm", "psm")


def oracle_masks(mix_spec, src_spec, kind):
    """Masks (C, T, F) from the mixture STFT (T, F) and the reference STFTs (C, T, F).

    ibm: 1 on the dominant source's bins (the DC target); irm: magnitude ratio |S_c| / sum_c |S_c|;
    psm: truncated phase-sensitive mask clamp(|S_c| cos(theta_c - theta_X) / |X|, 0, 1) (the tPSA
    target over |X|).
    """
    if kind == "ibm":
        return losses.ideal_binary_assignment(src_spec).permute(2, 0, 1)
    if kind == "irm":
        src_mag = src_spec.abs()
        return src_mag / src_mag.sum(dim=0, keepdim=True).clamp_min(losses.EPS)
    if kind == "psm":
        return (losses.mi_targets(mix_spec, src_spec, "tpsa") / mix_spec.abs().clamp_min(losses.EPS)).clamp(0.0, 1.0)
    raise ValueError(f"unknown mask '{kind}': use one of {', '.join(MASK_KINDS)}")
