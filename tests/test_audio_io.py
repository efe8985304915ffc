"""Writing audio: the 16-bit wavs of every stage."""

import numpy as np
import soundfile

from nnet import datafiles


def test_write_wav_in_blocks_writes_the_bytes_of_one_piece(tmp_path, monkeypatch):
    """write_wav converts block by block (memory); the file must be byte for byte what one
    soundfile.write of the clipped float64 samples gives, whatever the block length."""
    rng = np.random.default_rng(3)
    samples = (0.6 * rng.standard_normal(10_007)).astype(np.float32)  # some beyond [-1, 1]: clipped
    whole = tmp_path / "whole.wav"
    soundfile.write(whole, np.clip(samples.astype(np.float64), -1, 1), 8000, subtype="PCM_16", format="WAV")
    for block in (1000, 10_007, 1 << 20):
        monkeypatch.setattr(datafiles, "WRITE_BLOCK", block)
        path = tmp_path / f"blocks{block}.wav"
        datafiles.write_wav(path, samples, 8000)
        assert path.read_bytes() == whole.read_bytes(), block
    datafiles.write_wav(tmp_path / "empty.wav", np.zeros(0), 8000)
    assert soundfile.info(tmp_path / "empty.wav").frames == 0
