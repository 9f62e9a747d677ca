package io.ringserve.worker.engine;

import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.model.sampling.StoppingParams;
import java.time.Instant;

/**
 * One generation request as the engine accepts it.
 *
 * @param id          caller's id, echoed in logs
 * @param prompt      prompt token ids (not empty)
 * @param topLogprobs -1: no logprobs; 0: logprob of each sampled token; n &gt; 0: plus the n most likely
 * @param deadline    when the request must have finished, or null
 * @param replayed    how many trailing prompt tokens are output already delivered by an earlier attempt: they
 *                    count as generated for penalties and usage, and the seeded sampler skips their draws, so
 *                    the continuation equals what the first attempt would have produced
 */
public record EngineRequest(String id, int[] prompt, SamplingParams sampling, StoppingParams stopping, int topLogprobs, Instant deadline,
                            int replayed) {
    public EngineRequest {
        prompt = prompt.clone();
        if (replayed < 0) {
            throw new IllegalArgumentException("replayed_tokens (" + replayed + ") must be >= 0");
        }
    }

    /** A fresh request (nothing replayed). */
    public EngineRequest(String id, int[] prompt, SamplingParams sampling, StoppingParams stopping, int topLogprobs, Instant deadline) {
        this(id, prompt, sampling, stopping, topLogprobs, deadline, 0);
    }
}
