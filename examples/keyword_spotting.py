"""Spot spoken keywords in short noisy clips: log-mel features and a 1-D convolutional net.

The clips are synthesized with a fixed seed: half a second at 8 kHz of one of
six keywords, of an unknown syllable, or of background noise alone
("silence"). A keyword is a sequence of segments: syllables made of a few
formant-like tones whose frequencies glide along a keyword-specific contour,
fricative hiss, plosive bursts and gaps. Every clip has its own speed,
vocal-tract length, loudness and moment of the word, over noise of a random
colour at a random signal-to-noise ratio.

The features are computed with funcgrad.numpy in one jitted function: 25 ms
frames every 12.5 ms, a Hann window, the power spectrum, a mel filterbank, a
log and per-utterance normalization. The network convolves over time with
the mel bins as channels (PyTorch-style ``Conv1d`` modules), pools, averages
over time and scores the classes; the training step (forward, backward, Adam
update) is one jitted function.

    python examples/keyword_spotting.py
    python examples/keyword_spotting.py --epochs 5 --plot kws.png
"""
from __future__ import annotations

import time

import numpy as np
from _common import Progress, minibatches, parser, plot_curves

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import nn, optim, random
from funcgrad.nn import modules

RATE = 8000          # samples per second
CLIP = 4000          # samples per clip (0.5 s)
FRAME, HOP = 200, 100  # 25 ms windows every 12.5 ms

# Each keyword is a sequence of segments (duration in seconds, kind, contours). A voiced
# segment is a few formant tones, each gliding through its (start, end) frequency in Hz; a
# fricative is band-limited noise in (low, high) Hz; a burst is a short broadband click;
# a gap is silence.
KEYWORDS = {
    "yes": [(0.13, "voiced", [(300, 450), (2200, 1900), (2900, 2700)]),
            (0.10, "fricative", (2600, 3800))],
    "no": [(0.06, "voiced", [(250, 250), (1100, 1100)]),
           (0.17, "voiced", [(450, 550), (1100, 800), (2400, 2400)])],
    "go": [(0.015, "burst", None),
           (0.20, "voiced", [(450, 550), (1000, 800), (2400, 2400)])],
    "up": [(0.10, "voiced", [(650, 700), (1200, 1250), (2500, 2500)]),
           (0.04, "gap", None),
           (0.02, "burst", None)],
    "down": [(0.02, "burst", None),
             (0.22, "voiced", [(450, 750), (1700, 1100), (2500, 2300)]),
             (0.05, "voiced", [(250, 250), (1500, 1500)])],
    "stop": [(0.09, "fricative", (3000, 3900)),
             (0.03, "gap", None),
             (0.015, "burst", None),
             (0.12, "voiced", [(600, 650), (1000, 950), (2500, 2500)]),
             (0.03, "gap", None),
             (0.015, "burst", None)],
}
CLASSES = (*KEYWORDS, "unknown", "silence")


def band_noise(rng, n, low, high):
    """White noise of ``n`` samples keeping only the frequencies in ``[low, high]`` Hz."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / RATE)
    spectrum[(freqs < low) | (freqs > high)] = 0.0
    out = np.fft.irfft(spectrum, n)
    return out / (out.std() + 1e-8)


def envelope(n, ramp):
    """Raised-cosine fade in and out over ``ramp`` samples (at most half of ``n``)."""
    ramp = max(1, min(ramp, n // 2))
    env = np.ones(n)
    fade = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    env[:ramp], env[n - ramp:] = fade, fade[::-1]
    return env


def say(rng, segments):
    """One utterance of ``segments``: a random speed, vocal-tract length and jitter of each formant."""
    speed = rng.uniform(0.8, 1.2)
    scale = rng.uniform(0.85, 1.15)  # a longer or shorter vocal tract shifts every formant
    pieces = []
    for duration, kind, spec in segments:
        n = max(8, int(duration * speed * RATE))
        if kind == "voiced":
            t = np.arange(n) / RATE
            tone = np.zeros(n)
            for i, (f_start, f_end) in enumerate(spec):
                f_start, f_end = scale * f_start * rng.uniform(0.95, 1.05), scale * f_end * rng.uniform(0.95, 1.05)
                freq = f_start + (f_end - f_start) * t / t[-1]
                phase = 2 * np.pi * np.cumsum(freq) / RATE + rng.uniform(0, 2 * np.pi)
                tone += 0.6 ** i * np.sin(phase)
            pieces.append(tone * envelope(n, int(0.015 * RATE)))
        elif kind == "fricative":
            low, high = spec
            pieces.append(0.5 * band_noise(rng, n, scale * low, min(scale * high, 0.49 * RATE))
                          * envelope(n, int(0.02 * RATE)))
        elif kind == "burst":
            pieces.append(rng.standard_normal(n) * np.exp(-np.arange(n) / (0.003 * RATE)))
        else:
            pieces.append(np.zeros(n))
    return np.concatenate(pieces)


def babble(rng):
    """A syllable that is none of the keywords: two formant tones gliding between random frequencies."""
    f1, f2 = rng.uniform(250, 900, 2), rng.uniform(800, 2600, 2)
    return say(rng, [(rng.uniform(0.08, 0.25), "voiced", [tuple(f1), tuple(f2)])])


def background(rng, n):
    """Noise of a random colour (a mix of white and low-passed noise) and, sometimes, a hum."""
    white = rng.standard_normal(n)
    low = band_noise(rng, n, 0, rng.uniform(300, 2000))
    noise = rng.uniform(0.2, 1.0) * white + rng.uniform(0.0, 1.5) * low
    if rng.random() < 0.3:
        hum = rng.uniform(50, 300)
        noise += rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * hum * np.arange(n) / RATE + rng.uniform(0, 2 * np.pi))
    return noise / noise.std()


def make_clips(rng, n, snr=(-5.0, 15.0)):
    """``n`` clips ``(n, CLIP)`` float32 and their labels (about equally many of each class):
    a keyword or an unknown syllable at a random time over background noise (the
    signal-to-noise ratio over the word uniform in ``snr`` dB), or the noise alone, at a
    random loudness."""
    labels = np.arange(n) % len(CLASSES)
    rng.shuffle(labels)
    clips = np.zeros((n, CLIP))
    for i, label in enumerate(labels):
        clip = background(rng, CLIP)
        if CLASSES[label] != "silence":
            word = (babble(rng) if CLASSES[label] == "unknown" else say(rng, KEYWORDS[CLASSES[label]]))[:CLIP]
            start = rng.integers(0, CLIP - len(word) + 1)
            clip *= 10 ** (-rng.uniform(*snr) / 20)
            clip[start:start + len(word)] += word / np.sqrt(np.mean(word ** 2))
        clips[i] = clip * 10 ** rng.uniform(-2, 0) / np.abs(clip).max()
    return clips.astype(np.float32), labels.astype(np.int32)


def mel_filterbank(n_mels, n_fft, rate, low=50.0):
    """Triangular filters ``(n_fft // 2 + 1, n_mels)`` equally spaced on the mel scale."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    edges = 700.0 * (10 ** (np.linspace(mel(low), mel(rate / 2), n_mels + 2) / 2595.0) - 1.0)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lower) / (center - lower)
    falling = (upper - freqs) / (upper - center)
    return np.maximum(0.0, np.minimum(rising, falling)).T.astype(np.float32)


def make_features(n_mels):
    """``features(clips)``: ``(n, CLIP)`` waveforms to ``(n, n_mels, frames)`` normalized
    log-mel spectrograms, written with funcgrad.numpy so that it runs under ``fg.jit``.

    funcgrad.numpy has no FFT, so the spectrum of each frame is a real DFT written as
    two matrix products with constant cosine and sine matrices (``FRAME x bins``):
    ``re = frames @ cos``, ``im = frames @ sin``, power ``re**2 + im**2``. The frames
    overlap: the clip is reshaped into hops of ``HOP`` samples and each frame joins
    ``FRAME // HOP`` (here two) neighbouring hops. Each mel bin is then normalized over
    the utterance's frames (zero mean, about unit variance; the log turns loudness into
    an offset, which this removes)."""
    bins = FRAME // 2 + 1
    angle = 2 * np.pi * np.outer(np.arange(FRAME), np.arange(bins)) / FRAME
    cos, sin = np.cos(angle).astype(np.float32), -np.sin(angle).astype(np.float32)
    hann = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME) / FRAME)).astype(np.float32)
    mel = mel_filterbank(n_mels, FRAME, RATE)
    per_frame = FRAME // HOP

    def features(clips):
        n, length = clips.shape
        hops = fnp.reshape(clips[:, :length // HOP * HOP], (n, length // HOP, HOP))
        count = hops.shape[1] - per_frame + 1
        frames = fnp.concatenate([hops[:, i:i + count] for i in range(per_frame)], axis=-1)  # (n, frames, FRAME)
        frames = frames * hann
        re, im = frames @ cos, frames @ sin
        log_mel = fnp.log(1e-6 + (re * re + im * im) @ mel)  # (n, frames, n_mels)
        centered = log_mel - fnp.mean(log_mel, axis=1, keepdims=True)
        normalized = centered / fnp.sqrt(fnp.mean(centered * centered, axis=1, keepdims=True) + 1e-2)
        return fnp.transpose(normalized, (0, 2, 1))

    return features


class GlobalAvgPool1d(modules.Module):
    """The mean over time of ``(N, C, L)`` signals: ``(N, C)``."""

    def forward(self, x):
        return fnp.mean(x, axis=-1)


def build_model(key, n_mels, channels, dropout):
    k1, k2, k3, k4 = random.split(key, 4)
    return modules.Sequential(
        modules.Conv1d(n_mels, channels, 5, padding="same", key=k1), modules.ReLU(), modules.MaxPool1d(2),
        modules.Conv1d(channels, 2 * channels, 5, padding="same", key=k2), modules.ReLU(), modules.MaxPool1d(2),
        modules.Conv1d(2 * channels, 2 * channels, 3, padding="same", key=k3), modules.ReLU(),
        GlobalAvgPool1d(), modules.Dropout(dropout),
        modules.Linear(2 * channels, len(CLASSES), key=k4))


def main(argv=None):
    args = parser(__doc__, epochs=12, lr=(3e-3, "initial Adam learning rate (cosine decay to 0)"),
                  batch_size=(32, "minibatch size"), n=(4800, "clips (a fifth held out)"),
                  mels=(32, "mel bins (the network's input channels)"), channels=(32, "channels of the first convolution"),
                  dropout=(0.1, "dropout rate before the last layer")).parse_args(argv)
    rng = np.random.default_rng(args.seed)
    clips, labels = make_clips(rng, args.n)
    start = time.perf_counter()
    x = np.asarray(fg.jit(make_features(args.mels))(clips))
    n_test = args.n // 5
    x_train, y_train, x_test, y_test = x[n_test:], labels[n_test:], x[:n_test], labels[:n_test]
    print(f"{len(x_train)} training and {len(x_test)} held-out clips ({CLIP / RATE:.1f} s at {RATE} Hz) of "
          f"{', '.join(CLASSES)}; {x.shape[1]} mel bins x {x.shape[2]} frames each "
          f"({time.perf_counter() - start:.1f} s for the features)")

    k_init, k_train = random.split(random.key(args.seed))
    model = build_model(k_init, args.mels, args.channels, args.dropout)
    steps_per_epoch = len(y_train) // args.batch_size
    opt = optim.adam(optim.cosine_decay(args.lr, args.epochs * steps_per_epoch))
    state = opt.init(model)

    @fg.jit
    def step(model, state, x, y, key):
        loss, grads = fg.value_and_grad(
            lambda m: nn.softmax_cross_entropy(m(x, key=key, train=True), y))(model)
        updates, state = opt.update(grads, state, model)
        return optim.apply_updates(model, updates), state, loss

    predict = fg.jit(lambda model, x: fnp.argmax(model(x), axis=-1))
    progress = Progress(args.epochs)
    for epoch in range(1, args.epochs + 1):
        k_epoch = random.fold_in(k_train, epoch)
        losses = []
        for i, idx in enumerate(minibatches(k_epoch, len(y_train), args.batch_size)):
            model, state, loss = step(model, state, x_train[idx], y_train[idx], random.fold_in(k_epoch, i))
            losses.append(float(loss))
        acc = float(np.mean(predict(model, x_test) == y_test))
        progress.epoch(epoch, steps_per_epoch * args.batch_size, loss=np.mean(losses), held_out_accuracy=acc)
    plot_curves(args.plot, progress.history)
    pred = np.asarray(predict(model, x_test))
    print("  per class: " + ", ".join(f"{name} {np.mean(pred[y_test == c] == c):.0%}"
                                      for c, name in enumerate(CLASSES)))
    print(f"held-out accuracy: {acc:.2%} ({len(y_test)} clips, {progress.elapsed():.1f} s)")
    return acc


if __name__ == "__main__":
    main()
