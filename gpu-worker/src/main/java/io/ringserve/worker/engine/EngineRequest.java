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
 */
public record EngineRequest(String id, int[] prompt, SamplingParams sampling, StoppingParams stopping, int topLogprobs, Instant deadline) {
    public EngineRequest {
        prompt = prompt.clone();
    }
}
