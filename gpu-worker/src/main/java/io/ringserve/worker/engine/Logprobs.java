package io.ringserve.worker.engine;

import io.ringserve.worker.engine.EngineEvent.TopLogprob;
import io.ringserve.worker.engine.StepRunner.Sampled;
import io.ringserve.worker.engine.StepRunner.Sampling;
import java.util.ArrayList;
import java.util.List;

/** Host-side sampling of one row of logits, with the log-probabilities a request asked for. */
public final class Logprobs {
    private Logprobs() {
    }

    /**
     * Samples from {@code logits} with the sequence's sampler; logprobs come from the logits as the model
     * produced them (before penalties and temperature), as OpenAI's API reports them.
     *
     * @param logits (V) float32; modified
     */
    public static Sampled sample(Sampling s, float[] logits) {
        float[] raw = s.topLogprobs() >= 0 ? logits.clone() : null;
        int id = s.sampler().sample(logits, s.history(), s.historyLength(), s.promptLength());
        if (raw == null) {
            return new Sampled(id, Float.NaN, null);
        }
        double lse = logSumExp(raw);
        List<TopLogprob> top = s.topLogprobs() > 0 ? top(raw, lse, s.topLogprobs()) : null;
        return new Sampled(id, (float) (raw[id] - lse), top);
    }

    /** log Σ exp(x), max-subtracted, summed in double. */
    public static double logSumExp(float[] x) {
        float max = Float.NEGATIVE_INFINITY;
        for (float v : x) {
            max = Math.max(max, v);
        }
        double sum = 0;
        for (float v : x) {
            sum += Math.exp(v - max);
        }
        return max + Math.log(sum);
    }

    /** The n most likely ids, best first; the lower id wins a tie. */
    static List<TopLogprob> top(float[] raw, double lse, int n) {
        int[] best = new int[Math.min(n, raw.length)];
        int size = 0;
        for (int i = 0; i < raw.length; i++) {
            if (size < best.length) {
                best[size++] = i;
            } else if (better(raw, i, best[size - 1])) {
                best[size - 1] = i;
            } else {
                continue;
            }
            for (int j = size - 1; j > 0 && better(raw, best[j], best[j - 1]); j--) {
                int t = best[j];
                best[j] = best[j - 1];
                best[j - 1] = t;
            }
        }
        List<TopLogprob> out = new ArrayList<>(size);
        for (int i = 0; i < size; i++) {
            out.add(new TopLogprob(best[i], (float) (raw[best[i]] - lse)));
        }
        return out;
    }

    private static boolean better(float[] raw, int a, int b) {
        return raw[a] > raw[b] || (raw[a] == raw[b] && a < b);
    }
}
