package io.ringserve.worker.engine;

import io.ringserve.model.sampling.SamplingParams;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from one row of logits: penalties, then temperature, top-k, top-p and min-p, then
 * a draw from a per-sequence seeded generator (or argmax when greedy). One instance per sequence.
 */
public sealed interface Sampler permits Sampler.Greedy, Sampler.Random {

    /**
     * @param logits  (V) float32 logits of the position being sampled; may be modified
     * @param history the tokens so far (prompt then output), for penalties
     * @param prompt  how many of {@code history} are prompt tokens
     */
    int sample(float[] logits, int[] history, int historyLength, int prompt);

    /** What this sampler was made of (with {@link #skip}, enough to make an identical one elsewhere). */
    SamplingParams params();

    /** Advances past {@code draws} samples already taken by an earlier attempt (one random draw per token). */
    default void skip(int draws) {
    }

    static Sampler of(SamplingParams p) {
        return p.isGreedy() ? new Greedy(p) : new Random(p, new SplittableRandom(p.seed()));
    }

    /** Argmax; the lowest id wins a tie. */
    record Greedy(SamplingParams params) implements Sampler {
        @Override
        public int sample(float[] logits, int[] history, int historyLength, int prompt) {
            Penalties.apply(params, logits, history, historyLength, prompt);
            return argmax(logits);
        }
    }

    /** Temperature sampling with the truncations of {@link SamplingParams}. */
    record Random(SamplingParams params, SplittableRandom rng) implements Sampler {
        @Override
        public void skip(int draws) {
            for (int i = 0; i < draws; i++) {
                rng.nextDouble();
            }
        }

        @Override
        public int sample(float[] logits, int[] history, int historyLength, int prompt) {
            Penalties.apply(params, logits, history, historyLength, prompt);
            Kept kept = truncate(logits, params.temperature(), params.topK(), params.topP(), params.minP());
            double u = rng.nextDouble() * kept.total();
            for (int i = 0; i < kept.size(); i++) {
                u -= kept.probs()[i];
                if (u < 0) {
                    return kept.order()[i];
                }
            }
            return kept.order()[kept.size() - 1];
        }
    }

    /**
     * The candidates temperature sampling draws from, best first.
     *
     * @param order ids by descending logit
     * @param probs softmax(logits / T) over the top-k, descending, not renormalised after the top-p / min-p cut
     * @param size  how many of them survive top-p and min-p (at least one)
     * @param total their probability mass
     */
    public record Kept(int[] order, double[] probs, int size, double total) {
    }

    /**
     * The truncations of {@link SamplingParams} in their order: top-k, then top-p over the top-k's softmax (the
     * smallest prefix reaching p), then min-p relative to the most likely token. The device sampler implements the
     * same semantics; its tests compare against this.
     *
     * @param logits (V) float32, after penalties
     */
    public static Kept truncate(float[] logits, double temperature, int topK, double topP, double minP) {
        int vocab = logits.length;
        int[] order = descendingOrder(logits);
        int keep = topK > 0 ? Math.min(topK, vocab) : vocab;
        double[] probs = new double[keep]; // descending by logit
        double max = logits[order[0]] / temperature;
        double sum = 0;
        for (int i = 0; i < keep; i++) {
            probs[i] = Math.exp(logits[order[i]] / temperature - max);
            sum += probs[i];
        }
        for (int i = 0; i < keep; i++) {
            probs[i] /= sum;
        }
        // top-p: smallest prefix reaching p (always at least one token)
        double cumulative = 0;
        int cut = keep;
        for (int i = 0; i < keep; i++) {
            cumulative += probs[i];
            if (cumulative >= topP) {
                cut = i + 1;
                break;
            }
        }
        // min-p: relative to the most likely token
        if (minP > 0) {
            double floor = minP * probs[0];
            int c = 1;
            while (c < cut && probs[c] >= floor) {
                c++;
            }
            cut = c;
        }
        double total = 0;
        for (int i = 0; i < cut; i++) {
            total += probs[i];
        }
        return new Kept(order, probs, cut, total);
    }

    /**
     * Token ids by descending logit, the lower id first among equal logits (NaN first, -0.0 equal to 0.0).
     * One primitive sort of packed (order-preserving logit bits, id) keys: no boxing on the sampling path,
     * where the vocabulary has 157K entries.
     */
    static int[] descendingOrder(float[] logits) {
        long[] keys = new long[logits.length];
        for (int i = 0; i < logits.length; i++) {
            int bits = Float.floatToIntBits(logits[i] + 0.0f); // + 0.0f folds -0.0 into 0.0
            bits ^= (bits >> 31) & 0x7fffffff;                  // signed ints now order like the floats
            keys[i] = ((long) ~bits << 32) | i;                 // ~ reverses: the largest logit sorts first
        }
        Arrays.sort(keys);
        int[] order = new int[keys.length];
        for (int i = 0; i < keys.length; i++) {
            order[i] = (int) keys[i];
        }
        return order;
    }

    static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }

    /** Repetition (HF style: divide positive, multiply negative logits), presence and frequency penalties. */
    final class Penalties {
        private Penalties() {
        }

        static void apply(SamplingParams p, float[] logits, int[] history, int historyLength, int prompt) {
            if (!p.hasPenalties()) {
                return;
            }
            int vocab = logits.length;
            int[] generatedCount = new int[vocab];
            boolean[] seen = new boolean[vocab];
            for (int i = 0; i < historyLength; i++) {
                int id = history[i];
                if (id < 0 || id >= vocab) {
                    continue;
                }
                seen[id] = true;
                if (i >= prompt) {
                    generatedCount[id]++;
                }
            }
            for (int id = 0; id < vocab; id++) {
                if (seen[id] && p.repetitionPenalty() != 1) {
                    logits[id] = logits[id] > 0 ? (float) (logits[id] / p.repetitionPenalty()) : (float) (logits[id] * p.repetitionPenalty());
                }
                if (generatedCount[id] > 0) {
                    logits[id] -= (float) (p.presencePenalty() + p.frequencyPenalty() * generatedCount[id]);
                }
            }
        }
    }
}
