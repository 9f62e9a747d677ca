package io.ringserve.worker.reference;

import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.config.RopeScaling;

/**
 * RoPE frequencies for the first r rotary dims of each head (V2: r = head_dim · partial_rotary_factor;
 * v1: r = head_dim, MODEL-V1.md §4.4), computed as the reference code does in float32:
 * {@code inv_freq_j = 1 / base^(2j/r)}, angle = {@code f32(inv_freq_j · f32(p))}. With YaRN (docs/MODEL.md
 * §3.7; v1's DeepSeek-style YaRN is the same ramp and, with its default mscale, the same factor) the
 * frequencies blend interpolation and extrapolation by a linear ramp and cos/sin carry the attention
 * factor 0.1·ln(s) + 1.
 */
public final class RotaryEmbedding {
    private final int rotaryDim;
    private final float[] invFreq; // (r/2)
    private final float attentionFactor;

    public RotaryEmbedding(ModelConfig config) {
        this(config.rotaryDim(), config.ropeTheta(), config.ropeScaling());
    }

    public RotaryEmbedding(int rotaryDim, double base, RopeScaling scaling) {
        this.rotaryDim = rotaryDim;
        int half = rotaryDim / 2;
        float[] plain = new float[half];
        for (int j = 0; j < half; j++) {
            float exponent = (float) (2 * j) / rotaryDim;
            plain[j] = (float) (1.0 / (float) Math.pow(base, exponent));
        }
        if (scaling == null) {
            invFreq = plain;
            attentionFactor = 1f;
            return;
        }
        double s = scaling.factor();
        double l0 = scaling.originalMaxPositionEmbeddings();
        double low = Math.max(Math.floor(correctionDim(scaling.betaFast(), rotaryDim, base, l0)), 0);
        double high = Math.min(Math.ceil(correctionDim(scaling.betaSlow(), rotaryDim, base, l0)), rotaryDim - 1);
        if (low == high) {
            high += 0.001; // avoids a zero-width ramp, as the reference does
        }
        invFreq = new float[half];
        for (int j = 0; j < half; j++) {
            double ramp = Math.clamp((j - low) / (high - low), 0.0, 1.0);
            float extrapolationWeight = (float) (1.0 - ramp);
            float interpolated = (float) (plain[j] / s);
            invFreq[j] = interpolated * (1 - extrapolationWeight) + plain[j] * extrapolationWeight;
        }
        attentionFactor = (float) scaling.attentionFactor();
    }

    /** Dimension index whose wavelength completes {@code rotations} turns over the original context. */
    static double correctionDim(double rotations, int dim, double base, double originalContext) {
        return dim * Math.log(originalContext / (rotations * 2 * Math.PI)) / (2 * Math.log(base));
    }

    public int rotaryDim() {
        return rotaryDim;
    }

    public float[] inverseFrequencies() {
        return invFreq.clone();
    }

    public float attentionFactor() {
        return attentionFactor;
    }

    /** Fills cos/sin (each r/2) for an absolute position. */
    public void angles(int position, float[] cos, float[] sin) {
        float p = position;
        for (int j = 0; j < invFreq.length; j++) {
            float angle = invFreq[j] * p;
            cos[j] = (float) Math.cos(angle) * attentionFactor;
            sin[j] = (float) Math.sin(angle) * attentionFactor;
        }
    }
}
