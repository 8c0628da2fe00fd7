"""Machine translation with an encoder-decoder Transformer: English number words to digits.

The parallel corpus is generated: numbers below a million written out in English
("three hundred twelve thousand and five") paired with their digits ("3 1 2 0 0 5"). The
translation is not word by word: "thousand" and "hundred" decide where digits go and which
zeros appear, so the decoder must attend to the right source words. Held-out sentences are
numbers never seen in training. The model is built from ``nn.modules`` (``Embedding``,
``PositionalEncoding``, ``TransformerEncoderLayer``, ``TransformerDecoderLayer``, ``Linear``),
trained with teacher forcing, and decodes greedily, one token at a time, with one compiled step.
It reports token accuracy, exact matches and corpus BLEU-4 (Papineni et al., 2002) on the
held-out sentences.

    python examples/translation.py
    python examples/translation.py --epochs 4 --plot translation.png
"""
from __future__ import annotations

import collections
import math

import numpy as np
from _common import Progress, minibatches, parser, plot_curves

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import nn, optim, random
from funcgrad.nn import modules
from funcgrad.nn.losses import softmax_cross_entropies

ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEENS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
         "nineteen"]
TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
PAD, BOS, EOS = "<pad>", "<s>", "</s>"
MAX_WORDS, MAX_DIGITS = 11, 6  # "seven hundred and seventy seven thousand seven hundred and seventy seven"


def below_thousand(n):
    words = []
    if n >= 100:
        words += [ONES[n // 100], "hundred"]
        n %= 100
        if n:
            words.append("and")
    if n >= 20:
        words.append(TENS[n // 10])
        if n % 10:
            words.append(ONES[n % 10])
    elif n >= 10:
        words.append(TEENS[n - 10])
    elif n or not words:
        words.append(ONES[n])
    return words


def number_words(n):
    """English words for ``0 <= n < 10**6`` (British style, with "and")."""
    if n < 1000:
        return below_thousand(n)
    words = below_thousand(n // 1000) + ["thousand"]
    rest = n % 1000
    if rest:
        words += (["and"] if rest < 100 else []) + below_thousand(rest)
    return words


def make_corpus(rng, n_train, n_test):
    """Distinct random numbers (log-uniform sizes, so short and long ones both appear), split
    into training and held-out pairs ``(words, digits)``."""
    numbers, seen = [], set()
    while len(numbers) < n_train + n_test:
        n = int(10 ** rng.uniform(0, 6))
        if n < 10 ** 6 and n not in seen:
            seen.add(n)
            numbers.append(n)
    pairs = [(number_words(n), list(str(n))) for n in numbers]
    return pairs[:n_train], pairs[n_train:]


class Vocab:
    def __init__(self, words):
        self.words = [PAD, BOS, EOS] + sorted(set(words) - {PAD, BOS, EOS})
        self.index = {w: i for i, w in enumerate(self.words)}

    def encode(self, sentences, length, bos=False):
        """``(n, length)`` ids, each sentence followed by EOS (and led by BOS), padded with 0."""
        ids = np.zeros((len(sentences), length), np.int32)
        for i, s in enumerate(sentences):
            row = ([BOS] if bos else []) + list(s) + [EOS]
            ids[i, :len(row)] = [self.index[w] for w in row]
        return ids

    def decode(self, ids):
        out = []
        for i in ids:
            if i == self.index[EOS]:
                break
            out.append(self.words[i])
        return out


class Translator(modules.Module):
    """An encoder-decoder Transformer over token ids (batch first)."""

    def __init__(self, src_vocab, tgt_vocab, d_model, heads, layers, ff, dropout, max_len, *, key):
        keys = random.split(key, 3 + 2 * layers)
        self.src_embed = modules.Embedding(src_vocab, d_model, key=keys[0])
        self.tgt_embed = modules.Embedding(tgt_vocab, d_model, key=keys[1])
        self.positions = modules.PositionalEncoding(d_model, max_len, batch_first=True)
        self.encoder = [modules.TransformerEncoderLayer(d_model, heads, ff, dropout, batch_first=True,
                                                        norm_first=True, key=k) for k in keys[3:3 + layers]]
        self.decoder = [modules.TransformerDecoderLayer(d_model, heads, ff, dropout, batch_first=True,
                                                        norm_first=True, key=k) for k in keys[3 + layers:]]
        self.norm = modules.LayerNorm(d_model)
        self.out = modules.Linear(d_model, tgt_vocab, key=keys[2])

    def encode(self, src, key=None, train=False):
        pad = src == 0
        x = self.positions(self.src_embed(src))  # N(0, 1) embeddings: the scale of the sinusoids
        keys = random.split(key, len(self.encoder)) if train else [None] * len(self.encoder)
        for layer, k in zip(self.encoder, keys):
            x = layer(x, src_key_padding_mask=pad, key=k, train=train)
        return x, pad

    def decode(self, tgt_in, memory, pad, key=None, train=False):
        y = self.positions(self.tgt_embed(tgt_in))
        keys = random.split(key, len(self.decoder)) if train else [None] * len(self.decoder)
        for layer, k in zip(self.decoder, keys):
            y = layer(y, memory, memory_key_padding_mask=pad, tgt_is_causal=True, key=k, train=train)
        return self.out(self.norm(y))

    def __call__(self, src, tgt_in, *, key=None, train=False):
        ke, kd = random.split(key) if train else (None, None)
        memory, pad = self.encode(src, ke, train)
        return self.decode(tgt_in, memory, pad, kd, train)


def loss_fn(model, src, tgt, key):
    """Cross-entropy of the next target token, over the non-padding positions."""
    logits = model(src, tgt[:, :-1], key=key, train=True)
    labels = tgt[:, 1:]
    keep = fnp.asarray(labels != 0, fnp.float32)
    return fnp.sum(softmax_cross_entropies(logits, labels) * keep) / fnp.sum(keep)


def greedy_decode(model, src, length, bos):
    """Greedy decoding: the first ``length`` tokens after BOS, each chosen from the logits of the
    prefix so far. The step has one shape (the full length, causally masked), so it compiles once."""
    encode = fg.jit(lambda m, s: m.encode(s))
    step = fg.jit(lambda m, tgt, memory, pad, t: fnp.argmax(m.decode(tgt, memory, pad)[:, t], axis=-1))
    memory, pad = encode(model, src)
    tgt = np.zeros((len(src), length + 1), np.int32)
    tgt[:, 0] = bos
    for t in range(length):
        tgt[:, t + 1] = np.asarray(step(model, tgt[:, :-1], memory, pad, t))
    return tgt[:, 1:]


def bleu(references, hypotheses, max_n=4):
    """Corpus BLEU: the geometric mean of modified n-gram precisions (n = 1..4, clipped counts
    summed over the corpus) times the brevity penalty ``min(1, exp(1 - r / c))``."""
    matched, total = np.zeros(max_n), np.zeros(max_n)
    ref_len = hyp_len = 0
    for ref, hyp in zip(references, hypotheses):
        ref_len, hyp_len = ref_len + len(ref), hyp_len + len(hyp)
        for n in range(1, max_n + 1):
            r = collections.Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
            h = collections.Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
            matched[n - 1] += sum(min(c, r[g]) for g, c in h.items())
            total[n - 1] += max(0, len(hyp) - n + 1)
    if hyp_len == 0 or np.any(matched == 0):
        return 0.0
    log_precision = np.mean(np.log(matched / total))
    return float(math.exp(min(0.0, 1.0 - ref_len / hyp_len) + log_precision))


def evaluate(model, pairs, src_vocab, tgt_vocab, src_len, tgt_len):
    src = src_vocab.encode([w for w, _ in pairs], src_len)
    predicted = greedy_decode(model, src, tgt_len, tgt_vocab.index[BOS])
    hyps = [tgt_vocab.decode(row) for row in predicted]
    refs = [d for _, d in pairs]
    correct = total = 0
    for ref, row in zip(refs, predicted):
        want = [tgt_vocab.index[t] for t in ref] + [tgt_vocab.index[EOS]]
        got = list(row[:len(want)])
        correct += sum(a == b for a, b in zip(got, want))
        total += len(want)
    exact = float(np.mean([h == r for h, r in zip(hyps, refs)]))
    return correct / total, exact, bleu(refs, hyps), hyps


def main(argv=None):
    p = parser(__doc__, epochs=12, lr=(2e-3, "peak Adam learning rate (warm-up, then cosine decay)"),
               batch_size=(64, "minibatch size"), train_size=(4000, "training pairs"),
               test_size=(500, "held-out pairs"), d_model=(64, "model width"), heads=(4, "attention heads"),
               layers=(2, "encoder and decoder layers each"), ff=(128, "feed-forward width"),
               dropout=(0.1, "dropout rate"))
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    train_pairs, test_pairs = make_corpus(rng, args.train_size, args.test_size)
    src_vocab = Vocab(w for s, _ in train_pairs + test_pairs for w in s)
    tgt_vocab = Vocab(d for _, s in train_pairs + test_pairs for d in s)
    src_len, tgt_len = MAX_WORDS + 1, MAX_DIGITS + 1  # with EOS; fixed, so every corpus has one step shape
    src = src_vocab.encode([s for s, _ in train_pairs], src_len)
    tgt = tgt_vocab.encode([d for _, d in train_pairs], tgt_len + 1, bos=True)
    words, digits = test_pairs[0]
    print(f"{len(train_pairs)} training and {len(test_pairs)} held-out pairs, {len(src_vocab.words)} source "
          f"and {len(tgt_vocab.words)} target tokens, e.g. {' '.join(words)!r} -> {''.join(digits)!r}")

    k_init, k_train = random.split(random.key(args.seed))
    model = Translator(len(src_vocab.words), len(tgt_vocab.words), args.d_model, args.heads, args.layers, args.ff,
                       args.dropout, max(src_len, tgt_len + 1), key=k_init)
    steps = args.epochs * (len(src) // args.batch_size)
    schedule = optim.warmup_cosine_decay_schedule(0.0, args.lr, max(1, steps // 10), max(1, steps))
    opt = optim.adam(schedule)
    state = opt.init(model)
    print(f"{nn.count_params(model)} parameters")

    @fg.jit
    def step(model, state, src, tgt, key):
        loss, grads = fg.value_and_grad(loss_fn)(model, src, tgt, key)
        updates, state = opt.update(grads, state, model)
        return optim.apply_updates(model, updates), state, loss

    progress = Progress(args.epochs)
    for epoch in range(1, args.epochs + 1):
        losses = []
        k_epoch = random.fold_in(k_train, epoch)
        for i, idx in enumerate(minibatches(k_epoch, len(src), args.batch_size)):
            model, state, loss = step(model, state, src[idx], tgt[idx], random.fold_in(k_epoch, i + 1))
            losses.append(float(loss))
        token_acc, exact, score, _ = evaluate(model, test_pairs, src_vocab, tgt_vocab, src_len, tgt_len)
        progress.epoch(epoch, len(src), loss=np.mean(losses), token_accuracy=token_acc, exact=exact, bleu=score)
    plot_curves(args.plot, progress.history)
    _, _, _, hyps = evaluate(model, test_pairs[:5], src_vocab, tgt_vocab, src_len, tgt_len)
    for (words, digits), hyp in zip(test_pairs[:5], hyps):
        print(f"  {' '.join(words)!r} -> {''.join(hyp)!r} (reference {''.join(digits)!r})")
    print(f"held-out token accuracy: {token_acc:.2%}, exact matches: {exact:.2%}, BLEU: {100 * score:.1f} "
          f"({len(test_pairs)} sentences, {progress.elapsed():.1f} s)")
    return token_acc, exact, score


if __name__ == "__main__":
    main()
