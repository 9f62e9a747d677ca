package io.ringserve.model.config;

/**
 * {@code config.json} {@code rope_scaling}. Only YaRN is supported besides plain RoPE (no scaling).
 *
 * <p>The explicit {@code factor} is used as given (transformers v5, vLLM and SGLang behaviour), even where
 * transformers 4.5x would derive it from {@code max_position_embeddings / original_max_position_embeddings}.
 *
 * @param factor                        context extension factor s (> 1 to have an effect)
 * @param originalMaxPositionEmbeddings L0, the pre-training context length
 * @param betaFast                      YaRN beta_fast (32 by default)
 * @param betaSlow                      YaRN beta_slow (1 by default)
 */
public record RopeScaling(double factor, int originalMaxPositionEmbeddings, double betaFast, double betaSlow) {
    public RopeScaling {
        if (!(factor >= 1.0)) {
            throw new ConfigException("rope_scaling.factor (" + factor + ") must be >= 1");
        }
        if (originalMaxPositionEmbeddings <= 0) {
            throw new ConfigException("rope_scaling.original_max_position_embeddings (" + originalMaxPositionEmbeddings + ") must be > 0");
        }
        if (!(betaFast > betaSlow) || betaSlow <= 0) {
            throw new ConfigException("rope_scaling.beta_fast (" + betaFast + ") must be > beta_slow (" + betaSlow + ") > 0");
        }
    }

    /** YaRN attention factor: 0.1 ln s + 1, multiplied into cos and sin. */
    public double attentionFactor() {
        return 0.1 * Math.log(factor) + 1.0;
    }

    static RopeScaling parse(JsonFields f, int maxPositionEmbeddings) {
        if (f == null) {
            return null;
        }
        String type = f.stringOr("rope_type", f.stringOr("type", "default"));
        switch (type) {
            case "default":
                return null;
            case "yarn":
                break;
            default:
                throw new ConfigException(f.source() + ": rope_type \"" + type + "\" is not supported (supported: yarn, default)");
        }
        if (!f.has("factor")) {
            throw new ConfigException(f.source() + ": factor is required for yarn");
        }
        return new RopeScaling(
                f.doubleOr("factor", 1.0),
                f.intOr("original_max_position_embeddings", maxPositionEmbeddings),
                f.doubleOr("beta_fast", 32.0),
                f.doubleOr("beta_slow", 1.0));
    }
}
