package io.ringserve.model.sampling;

/**
 * How the next token is chosen from the logits. Temperature 0 means greedy (argmax, lowest id on ties).
 *
 * @param temperature       ≥ 0; 0 is greedy
 * @param topK              keep the k most likely tokens; 0 = all
 * @param topP              keep the smallest set whose probability reaches p; 1 = all
 * @param minP              drop tokens below minP · p(most likely); 0 = none
 * @param repetitionPenalty multiplicative penalty (&gt; 1 discourages) on tokens already in prompt or output; 1 = none
 * @param presencePenalty   subtracted once from the logit of every token already generated
 * @param frequencyPenalty  subtracted per occurrence of a token already generated
 * @param seed              random seed; the same seed and inputs give the same tokens
 */
public record SamplingParams(double temperature, int topK, double topP, double minP,
                             double repetitionPenalty, double presencePenalty, double frequencyPenalty, long seed) {

    public SamplingParams {
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature (" + temperature + ") must be >= 0");
        }
        if (topK < 0) {
            throw new IllegalArgumentException("top_k (" + topK + ") must be >= 0 (0 = disabled)");
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("top_p (" + topP + ") must be > 0 and <= 1");
        }
        if (!(minP >= 0 && minP <= 1)) {
            throw new IllegalArgumentException("min_p (" + minP + ") must be in [0, 1]");
        }
        if (!(repetitionPenalty > 0) || Double.isInfinite(repetitionPenalty)) {
            throw new IllegalArgumentException("repetition_penalty (" + repetitionPenalty + ") must be > 0");
        }
        if (!(presencePenalty >= -2 && presencePenalty <= 2)) {
            throw new IllegalArgumentException("presence_penalty (" + presencePenalty + ") must be in [-2, 2]");
        }
        if (!(frequencyPenalty >= -2 && frequencyPenalty <= 2)) {
            throw new IllegalArgumentException("frequency_penalty (" + frequencyPenalty + ") must be in [-2, 2]");
        }
    }

    public static SamplingParams greedy() {
        return new SamplingParams(0, 0, 1, 0, 1, 0, 0, 0);
    }

    public static SamplingParams of(double temperature, long seed) {
        return new SamplingParams(temperature, 0, 1, 0, 1, 0, 0, seed);
    }

    public boolean isGreedy() {
        return temperature == 0;
    }

    public boolean hasPenalties() {
        return repetitionPenalty != 1 || presencePenalty != 0 || frequencyPenalty != 0;
    }
}
