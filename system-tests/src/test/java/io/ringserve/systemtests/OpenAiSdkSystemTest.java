package io.ringserve.systemtests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.errors.UnauthorizedException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionChoice;
import com.openai.models.completions.CompletionCreateParams;
import com.openai.models.models.Model;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The packaged worker (tiny fixture model, CPU) and the packaged gateway as real processes, driven by the
 * official OpenAI Java SDK. Greedy output through the gateway must equal what the worker's own command line
 * generates for the same prompt and token budget.
 */
@Timeout(120)
class OpenAiSdkSystemTest {
    private static final String MODEL_ID = "inclusionAI/Ring-mini-2.0";
    private static final String API_KEY = "sk-system-test";
    private static final String QUESTION = "What is a ring?";
    private static final String PROMPT = "A ring is";
    private static final int MAX_TOKENS = 24;
    private static final Duration STARTUP = Duration.ofSeconds(90);

    private static Processes processes;
    private static OpenAIClient client;
    private static String baseUrl;
    private static Generated cliChat;
    private static Generated cliPrompt;

    /** What {@code gpu-worker.jar generate} printed: the ids line, then the text. */
    record Generated(List<Integer> ids, String text) {
        static Generated parse(String stdout) {
            int nl = stdout.indexOf('\n');
            if (nl < 0) {
                throw new IllegalStateException("unexpected generate output: " + stdout);
            }
            List<Integer> ids = new ArrayList<>();
            for (String s : stdout.substring(0, nl).split(",")) {
                if (!s.isBlank()) {
                    ids.add(Integer.parseInt(s.trim()));
                }
            }
            String text = stdout.substring(nl + 1);
            // println added exactly one line separator after the text
            if (text.endsWith(System.lineSeparator())) {
                text = text.substring(0, text.length() - System.lineSeparator().length());
            }
            return new Generated(ids, text);
        }
    }

    @BeforeAll
    static void start() throws Exception {
        Path workerJar = Processes.requiredFile("ringserve.worker.jar", "package gpu-worker first (./mvnw package)");
        Path gatewayJar = Processes.requiredFile("ringserve.gateway.jar", "package api-service first (./mvnw package)");
        Path model = Processes.requiredFile("ringserve.tiny.model", "the tiny fixture model is part of the repository");
        processes = new Processes(Path.of(System.getProperty("ringserve.logs.dir", "target/system-test-logs"))
                .resolve(OpenAiSdkSystemTest.class.getSimpleName()));

        int grpcPort = Processes.freePort();
        int workerHttp = Processes.freePort();
        int gatewayHttp = Processes.freePort();
        int gatewayManagement = Processes.freePort();
        Process worker = processes.startJar("worker", Processes.WORKER_JVM_FLAGS, workerJar, List.of("serve",
                "--ringserve.worker.model=" + model, "--ringserve.worker.grpc-port=" + grpcPort,
                "--server.port=" + workerHttp, "--server.address=127.0.0.1", "--ringserve.worker.kv-cache-bytes=64MB",
                "--ringserve.worker.drain-timeout=2s"));
        Process gateway = processes.startJar("gateway", List.of(), gatewayJar, List.of(
                "--ringserve.gateway.model-dir=" + model, "--ringserve.gateway.model-id=" + MODEL_ID,
                "--ringserve.gateway.workers.addresses=127.0.0.1:" + grpcPort,
                "--ringserve.gateway.workers.poll-interval=200ms", "--ringserve.gateway.api-keys=" + API_KEY,
                "--server.port=" + gatewayHttp, "--server.address=127.0.0.1",
                "--management.server.port=" + gatewayManagement, "--management.server.address=127.0.0.1"));

        // the reference output: the worker's command line on the same model, prompt and token budget
        Path chat = processes.logDir().resolve("chat.json");
        Files.writeString(chat, "{\"messages\":[{\"role\":\"user\",\"content\":\"" + QUESTION + "\"}]}", StandardCharsets.UTF_8);
        CompletableFuture<Generated> chatRef = CompletableFuture.supplyAsync(() -> Generated.parse(processes.run(
                "cli-generate-chat", Processes.WORKER_JVM_FLAGS, workerJar, List.of("generate", "--model", model.toString(),
                        "--chat", chat.toString(), "--max-tokens", Integer.toString(MAX_TOKENS)), STARTUP)));
        CompletableFuture<Generated> promptRef = CompletableFuture.supplyAsync(() -> Generated.parse(processes.run(
                "cli-generate-prompt", Processes.WORKER_JVM_FLAGS, workerJar, List.of("generate", "--model", model.toString(),
                        "--prompt", PROMPT, "--max-tokens", Integer.toString(MAX_TOKENS)), STARTUP)));

        Processes.awaitUp("worker", worker, URI.create("http://127.0.0.1:" + workerHttp + "/actuator/health/readiness"),
                STARTUP, processes.log("worker"));
        Processes.awaitUp("gateway", gateway, URI.create("http://127.0.0.1:" + gatewayManagement + "/actuator/health/readiness"),
                STARTUP, processes.log("gateway"));
        cliChat = chatRef.get();
        cliPrompt = promptRef.get();

        baseUrl = "http://127.0.0.1:" + gatewayHttp + "/v1";
        client = OpenAIOkHttpClient.builder().baseUrl(baseUrl).apiKey(API_KEY).maxRetries(0)
                .timeout(Duration.ofSeconds(30)).build();
    }

    @AfterAll
    static void stop() {
        if (client != null) {
            client.close();
        }
        if (processes != null) {
            processes.close();
        }
    }

    /** The CLI text split the way the gateway splits it: reasoning before {@code </think>}, then the answer. */
    private static String[] expectedSplit(String text) {
        int at = text.indexOf("</think>");
        if (at < 0) {
            return new String[] {text, ""};
        }
        return new String[] {text.substring(0, at), text.substring(at + "</think>".length()).replaceFirst("^[\r\n]+", "")};
    }

    private static String reasoningOf(Map<String, JsonValue> additional) {
        JsonValue v = additional.get("reasoning_content");
        return v == null || v.isNull() ? "" : v.asStringOrThrow();
    }

    private static ChatCompletionCreateParams.Builder greedyChat() {
        return ChatCompletionCreateParams.builder().model(MODEL_ID).addUserMessage(QUESTION)
                .maxCompletionTokens(MAX_TOKENS).temperature(0.0);
    }

    @Test
    void listsTheServedModel() {
        List<Model> models = client.models().list().data();
        assertEquals(1, models.size(), models::toString);
        assertEquals(MODEL_ID, models.getFirst().id());
    }

    @Test
    void streamingChatMatchesTheWorkerCommandLineAndReportsUsageOnce() {
        ChatCompletionCreateParams params = greedyChat()
                .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build()).build();
        StringBuilder content = new StringBuilder();
        StringBuilder reasoning = new StringBuilder();
        List<String> finishReasons = new ArrayList<>();
        List<ChatCompletionChunk> usageChunks = new ArrayList<>();
        int chunks = 0;
        try (StreamResponse<ChatCompletionChunk> stream = client.chat().completions().createStreaming(params)) {
            for (ChatCompletionChunk chunk : (Iterable<ChatCompletionChunk>) stream.stream()::iterator) {
                chunks++;
                assertEquals(MODEL_ID, chunk.model());
                if (chunk.usage().isPresent()) {
                    usageChunks.add(chunk);
                    assertTrue(chunk.choices().isEmpty(), "the usage chunk has no choices");
                }
                for (ChatCompletionChunk.Choice choice : chunk.choices()) {
                    choice.delta().content().ifPresent(content::append);
                    reasoning.append(reasoningOf(choice.delta()._additionalProperties()));
                    choice.finishReason().ifPresent(f -> finishReasons.add(f.asString()));
                }
            }
        }
        assertTrue(chunks > 3, "only " + chunks + " chunks");
        assertEquals(1, usageChunks.size(), "usage chunks");
        var usage = usageChunks.getFirst().usage().orElseThrow();
        assertEquals(cliChat.ids().size(), usage.completionTokens(), "completion tokens");
        assertTrue(usage.promptTokens() > 0);
        assertEquals(usage.promptTokens() + usage.completionTokens(), usage.totalTokens());
        assertEquals(List.of(cliChat.ids().size() < MAX_TOKENS ? "stop" : "length"), finishReasons);
        String[] expected = expectedSplit(cliChat.text());
        assertFalse(reasoning.isEmpty(), "the prompt ends inside <think>, so reasoning_content must arrive");
        assertEquals(expected[0], reasoning.toString(), "reasoning_content");
        assertEquals(expected[1], content.toString(), "content");
    }

    @Test
    void nonStreamingChatMatchesTheWorkerCommandLine() {
        ChatCompletion completion = client.chat().completions().create(greedyChat().build());
        assertEquals(MODEL_ID, completion.model());
        assertEquals(1, completion.choices().size());
        ChatCompletion.Choice choice = completion.choices().getFirst();
        Map<String, JsonValue> extra = choice.message()._additionalProperties();
        assertTrue(extra.containsKey("reasoning_content"), "reasoning_content is missing: " + extra);
        String[] expected = expectedSplit(cliChat.text());
        assertEquals(expected[0], reasoningOf(extra), "reasoning_content");
        assertEquals(expected[1], choice.message().content().orElse(""), "content");
        assertEquals(cliChat.ids().size() < MAX_TOKENS ? "stop" : "length", choice.finishReason().asString());
        var usage = completion.usage().orElseThrow();
        assertEquals(cliChat.ids().size(), usage.completionTokens());
    }

    @Test
    void completionMatchesTheWorkerCommandLine() {
        Completion completion = client.completions().create(CompletionCreateParams.builder().model(MODEL_ID)
                .prompt(PROMPT).maxTokens(MAX_TOKENS).temperature(0.0).build());
        CompletionChoice choice = completion.choices().getFirst();
        assertEquals(cliPrompt.text(), choice.text());
        assertEquals(cliPrompt.ids().size(), completion.usage().orElseThrow().completionTokens());
        assertEquals(cliPrompt.ids().size() < MAX_TOKENS ? "stop" : "length", choice.finishReason().asString());
    }

    @Test
    void stopStringEndsTheOutputBeforeIt() {
        String full = cliPrompt.text();
        // a stop string from the middle of the greedy text: the output must end right before its first occurrence
        String stop = full.substring(full.length() / 2, full.length() / 2 + 2);
        assertFalse(stop.isBlank(), "pick another prompt: the middle of the greedy text is blank: " + full);
        Completion completion = client.completions().create(CompletionCreateParams.builder().model(MODEL_ID)
                .prompt(PROMPT).maxTokens(MAX_TOKENS).temperature(0.0).stop(stop).build());
        CompletionChoice choice = completion.choices().getFirst();
        assertEquals(full.substring(0, full.indexOf(stop)), choice.text());
        assertEquals(CompletionChoice.FinishReason.STOP, choice.finishReason());
    }

    @Test
    void badRequestSurfacesAsTheSdkExceptionWithTheParam() {
        BadRequestException e = assertThrows(BadRequestException.class,
                () -> client.chat().completions().create(greedyChat().temperature(5.0).build()));
        assertEquals(400, e.statusCode());
        assertEquals("temperature", e.param().orElse(null), e::getMessage);
        assertEquals("invalid_request_error", e.type().orElse(null));
    }

    @Test
    void wrongApiKeyIsRejectedWith401() {
        OpenAIClient wrong = OpenAIOkHttpClient.builder().baseUrl(baseUrl).apiKey("sk-wrong").maxRetries(0).build();
        try {
            UnauthorizedException e = assertThrows(UnauthorizedException.class, () -> wrong.models().list());
            assertEquals(401, e.statusCode());
            assertThrows(UnauthorizedException.class, () -> wrong.chat().completions().create(greedyChat().build()));
        } finally {
            wrong.close();
        }
    }
}
