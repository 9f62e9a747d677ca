package io.ringserve.gateway.worker;

import io.ringserve.protocol.v1.TokenLogprob;
import java.util.List;

/** What a generation yields, whichever workers served it. */
public sealed interface WorkerOutput {
    /**
     * Tokens sampled since the last output.
     *
     * @param ids      token ids
     * @param logprobs parallel log probabilities, empty unless requested
     */
    record Tokens(int[] ids, List<TokenLogprob> logprobs) implements WorkerOutput {
    }

    /**
     * Generation ended normally.
     *
     * @param reason           "stop" or "length"
     * @param promptTokens     prompt tokens of the original request
     * @param completionTokens tokens generated in all
     */
    record Finished(String reason, int promptTokens, int completionTokens) implements WorkerOutput {
    }
}
