package io.ringserve.systemtests;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

/**
 * The request bodies of the process-kill scenarios, and how the streams that ran across a kill ended, against the text of an undisturbed run of the same body:
 * outcomes, streams in progress at the kill, those that continued with exactly the undisturbed text, error events by
 * message, and what went wrong (a different text, a failure other than an error event).
 */
final class KillOutcomes {
    final Map<SseStream.Outcome, Integer> outcomes = new EnumMap<>(SseStream.Outcome.class);
    final Map<String, Integer> errors = new LinkedHashMap<>();
    final List<String> problems = new ArrayList<>();
    int inProgressAtKill;
    int continuedExactly;

    /** A streamed greedy chat request of {@code maxTokens} tokens: the kill scenarios' deterministic body. */
    static String greedyChat(String content, int maxTokens) {
        return "{\"model\":\"" + Cluster.MODEL_ID + "\",\"stream\":true,\"max_tokens\":" + maxTokens
                + ",\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":\"" + content + "\"}]}";
    }

    /** A streamed seeded completion (temperature 0.9, top_p 0.95): sampled, yet replayed exactly. */
    static String seededCompletion(String prompt, int seed, int maxTokens) {
        return "{\"model\":\"" + Cluster.MODEL_ID + "\",\"stream\":true,\"max_tokens\":" + maxTokens
                + ",\"temperature\":0.9,\"top_p\":0.95,\"seed\":" + seed + ",\"prompt\":\"" + prompt + "\"}";
    }

    /** The API path of a body built here: chat or completions. */
    static String path(String body) {
        return body.contains("\"messages\"") ? "/v1/chat/completions" : "/v1/completions";
    }

    /** Waits for every stream; {@code bodies.get(i)} is stream i's request body, {@code reference} its undisturbed text. */
    static KillOutcomes of(List<Future<SseStream.Result>> streams, List<String> bodies, Map<String, String> reference, long killedAt)
            throws InterruptedException, ExecutionException {
        KillOutcomes k = new KillOutcomes();
        for (int i = 0; i < streams.size(); i++) {
            SseStream.Result r = streams.get(i).get();
            k.outcomes.merge(r.outcome(), 1, Integer::sum);
            boolean inProgress = r.firstTokenNanos() > 0 && r.firstTokenNanos() < killedAt && r.endNanos() > killedAt;
            if (inProgress) {
                k.inProgressAtKill++;
            }
            if (r.outcome() == SseStream.Outcome.FINISHED) {
                if (!r.text().equals(reference.get(bodies.get(i)))) {
                    k.problems.add("#" + i + " continued with different text (in progress at kill: " + inProgress + ")");
                } else if (inProgress) {
                    k.continuedExactly++;
                }
            } else if (r.outcome() == SseStream.Outcome.ERROR_EVENT) {
                k.errors.merge(r.error().path("error").path("message").asText(), 1, Integer::sum);
            } else {
                k.problems.add("#" + i + " " + r.outcome() + " " + r.detail());
            }
        }
        return k;
    }
}
