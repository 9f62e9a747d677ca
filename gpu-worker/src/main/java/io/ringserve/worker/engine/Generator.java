package io.ringserve.worker.engine;

import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.model.sampling.StoppingParams;
import io.ringserve.worker.reference.KvCache;
import io.ringserve.worker.reference.ReferenceForward;
import java.util.Arrays;
import java.util.function.IntConsumer;

/** Generates one sequence on the CPU reference engine: chunked prefill, then one decode step per token. */
public final class Generator {
    /** Prompt tokens per prefill call; bounds activation memory for long prompts. */
    public static final int PREFILL_CHUNK = 256;

    public enum FinishReason { STOP, LENGTH }

    /** @param tokens the generated ids, including the stop token when one ended generation */
    public record Generation(int[] tokens, FinishReason finishReason) {
    }

    private Generator() {
    }

    /**
     * @param onToken called with each id as soon as it is sampled (for streaming), may be null
     */
    public static Generation generate(ReferenceForward model, int[] prompt, SamplingParams sampling, StoppingParams stopping, IntConsumer onToken) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("the prompt is empty: at least one token is needed");
        }
        KvCache cache = model.newCache();
        if (prompt.length + stopping.maxNewTokens() > cache.maxPositions()) {
            throw new IllegalArgumentException("prompt (" + prompt.length + " tokens) + max tokens (" + stopping.maxNewTokens()
                    + ") exceeds the context length (" + cache.maxPositions() + ")");
        }
        float[] logits = null;
        for (int from = 0; from < prompt.length; from += PREFILL_CHUNK) {
            int[] chunk = Arrays.copyOfRange(prompt, from, Math.min(prompt.length, from + PREFILL_CHUNK));
            logits = model.forward(cache, chunk, false, null);
        }
        Sampler sampler = Sampler.of(sampling);
        int[] history = Arrays.copyOf(prompt, prompt.length + stopping.maxNewTokens());
        int length = prompt.length;
        int[] out = new int[stopping.maxNewTokens()];
        for (int n = 0; n < stopping.maxNewTokens(); n++) {
            int next = sampler.sample(logits, history, length, prompt.length);
            out[n] = next;
            history[length++] = next;
            if (onToken != null) {
                onToken.accept(next);
            }
            if (!stopping.ignoreEos() && stopping.stopTokenIds().contains(next)) {
                return new Generation(Arrays.copyOf(out, n + 1), FinishReason.STOP);
            }
            if (n + 1 < stopping.maxNewTokens()) {
                logits = model.forward(cache, new int[] {next}, false, null);
            }
        }
        return new Generation(out, FinishReason.LENGTH);
    }
}
