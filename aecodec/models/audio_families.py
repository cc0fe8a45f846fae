"""The shipped audio model families (torch-free, so the registry can name them without importing torch).

Rates are per mono signal; ``target_kbps`` are the rates the training run steers
each quality level to (a rate controller adapts each level's Lagrange
multiplier), so level q is "about target_kbps[q] kbps".
"""

AUDIO_FAMILIES: dict[str, dict] = {
    "speech": dict(sample_rate=16000, strides=(2, 4, 5, 8), channels=(16, 32, 64, 128), M=64, N=64,
                   levels=3, target_kbps=(3.0, 6.0, 12.0), dec_width=1.0),
    "music": dict(sample_rate=48000, strides=(4, 4, 5, 6), channels=(16, 32, 64, 128), M=128, N=64,
                  levels=3, target_kbps=(12.0, 24.0, 48.0), dec_width=1.0),
}
