package io.ringserve.systemtests;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * One streaming request read the way an OpenAI client reads it, classified into exactly one outcome. A
 * watchdog closes the stream at the deadline, so nothing waits longer than that.
 */
final class SseStream {
    private static final ScheduledExecutorService WATCHDOG = Executors.newScheduledThreadPool(1, r -> {
        Thread t = new Thread(r, "sse-watchdog");
        t.setDaemon(true);
        return t;
    });

    /** How a stream ended. */
    enum Outcome {
        /** 200, a chunk with finish_reason, then data: [DONE]. */
        FINISHED,
        /** 200, an error event, then data: [DONE]. */
        ERROR_EVENT,
        /** a non-200 answer with an error body. */
        HTTP_ERROR,
        /** the client closed the stream on purpose. */
        DISCONNECTED,
        /** the stream ended some other way: no [DONE], a second terminal event, a broken body. */
        BROKEN,
        /** still open at the deadline. */
        HUNG,
        /** the connection failed before any answer. */
        CONNECT_FAILED
    }

    /** What one stream delivered. */
    record Result(Outcome outcome, int status, String content, String reasoning, String finishReason, int usageChunks,
                  JsonNode error, String retryAfter, long startNanos, long firstTokenNanos, long endNanos,
                  String detail) {
        String text() {
            return reasoning + content;
        }

        Duration latency() {
            return Duration.ofNanos(endNanos - startNanos);
        }
    }

    private SseStream() {
    }

    /** POSTs {@code body} with the test key to {@code uri} and reads the event stream. */
    static Result run(HttpClient http, URI uri, String body, Duration deadline, int disconnectAfterChunks) {
        return run(http, uri, body, deadline, disconnectAfterChunks, null);
    }

    /**
     * @param disconnectAfterChunks close the stream after this many content chunks; negative: read to the end
     * @param onChunk called after each content chunk with the count so far (may be null)
     */
    static Result run(HttpClient http, URI uri, String body, Duration deadline, int disconnectAfterChunks,
                      java.util.function.IntConsumer onChunk) {
        long start = System.nanoTime();
        HttpRequest request = HttpRequest.newBuilder(uri).timeout(deadline)
                .header("Authorization", "Bearer " + Cluster.API_KEY).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
        HttpResponse<InputStream> response;
        try {
            response = http.send(request, HttpResponse.BodyHandlers.ofInputStream());
        } catch (java.net.http.HttpTimeoutException e) {
            return new Result(Outcome.HUNG, 0, "", "", null, 0, null, null, start, 0, System.nanoTime(), "no headers: " + e);
        } catch (IOException e) {
            return new Result(Outcome.CONNECT_FAILED, 0, "", "", null, 0, null, null, start, 0, System.nanoTime(), e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
        String retryAfter = response.headers().firstValue("Retry-After").orElse(null);
        if (response.statusCode() != 200) {
            String text;
            try (InputStream in = response.body()) {
                text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                text = "";
            }
            JsonNode json = Json.parse(text);
            boolean wellFormed = json != null && json.path("error").path("message").isTextual();
            return new Result(wellFormed ? Outcome.HTTP_ERROR : Outcome.BROKEN, response.statusCode(), "", "", null, 0,
                    json, retryAfter, start, 0, System.nanoTime(), text);
        }
        InputStream in = response.body();
        long remaining = deadline.toNanos() - (System.nanoTime() - start);
        boolean[] timedOut = new boolean[1];
        ScheduledFuture<?> dog = WATCHDOG.schedule(() -> {
            synchronized (timedOut) {
                timedOut[0] = true;
            }
            try {
                in.close();
            } catch (IOException e) {
                // closing is all we want
            }
        }, Math.max(1, remaining), TimeUnit.NANOSECONDS);
        StringBuilder content = new StringBuilder();
        StringBuilder reasoning = new StringBuilder();
        String finish = null;
        int usage = 0;
        int chunks = 0;
        int terminals = 0;
        JsonNode error = null;
        boolean done = false;
        long firstToken = 0;
        String detail = "";
        try (BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            String line;
            while ((line = reader.readLine()) != null) {
                if (!line.startsWith("data: ")) {
                    continue;
                }
                String data = line.substring(6);
                if (done) {
                    detail = "data after [DONE]: " + data;
                    terminals++;
                    break;
                }
                if (data.equals("[DONE]")) {
                    done = true;
                    continue;
                }
                JsonNode event = Json.parse(data);
                if (event == null) {
                    detail = "not JSON: " + data;
                    terminals += 2;
                    break;
                }
                if (event.has("error")) {
                    error = event;
                    terminals++;
                    continue;
                }
                if (event.path("usage").isObject() && !event.path("usage").isEmpty()) {
                    usage++;
                }
                JsonNode choice = event.path("choices").path(0);
                if (choice.isMissingNode()) {
                    continue;
                }
                String c = choice.has("delta") ? choice.path("delta").path("content").asText("") : choice.path("text").asText("");
                String r = choice.path("delta").path("reasoning_content").asText("");
                if (!c.isEmpty() || !r.isEmpty()) {
                    if (firstToken == 0) {
                        firstToken = System.nanoTime();
                    }
                    content.append(c);
                    reasoning.append(r);
                    chunks++;
                    if (onChunk != null) {
                        onChunk.accept(chunks);
                    }
                    if (disconnectAfterChunks >= 0 && chunks >= disconnectAfterChunks && finish == null) {
                        dog.cancel(false);
                        in.close();
                        return new Result(Outcome.DISCONNECTED, 200, content.toString(), reasoning.toString(), null, usage,
                                null, retryAfter, start, firstToken, System.nanoTime(), "closed after " + chunks + " chunks");
                    }
                }
                if (choice.hasNonNull("finish_reason")) {
                    finish = choice.get("finish_reason").asText();
                    terminals++;
                }
            }
        } catch (IOException e) {
            detail = e.toString();
        }
        dog.cancel(false);
        long end = System.nanoTime();
        boolean hung;
        synchronized (timedOut) {
            hung = timedOut[0];
        }
        Outcome outcome;
        if (hung && !done) {
            outcome = Outcome.HUNG;
        } else if (done && terminals == 1 && finish != null) {
            outcome = Outcome.FINISHED;
        } else if (done && terminals == 1 && error != null) {
            outcome = Outcome.ERROR_EVENT;
        } else {
            outcome = Outcome.BROKEN;
            detail = "done=" + done + " terminals=" + terminals + " finish=" + finish + " error=" + error + " " + detail;
        }
        return new Result(outcome, 200, content.toString(), reasoning.toString(), finish, usage, error, retryAfter, start,
                firstToken, end, detail);
    }
}
