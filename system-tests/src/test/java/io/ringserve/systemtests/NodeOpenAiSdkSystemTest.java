package io.ringserve.systemtests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The official OpenAI Node SDK ({@code openai} on npm) against the shared cluster, run by node's own test
 * runner: {@code system-tests/src/test/node/openai-sdk.test.mjs}. {@code npm ci} installs the locked SDK when
 * {@code node_modules} is missing. Skipped when node or npm is not installed.
 */
@Timeout(600)
class NodeOpenAiSdkSystemTest {
    private static final String QUESTION = "What is a ring?";
    private static final String PROMPT = "A ring is";
    private static final int MAX_TOKENS = 24;

    @Test
    void officialNodeSdkPassesItsTests() throws Exception {
        Path dir = Path.of(System.getProperty("ringserve.node.dir", "src/test/node")).toAbsolutePath();
        assumeTrue(available("node"), "node is not installed");
        assumeTrue(available("npm"), "npm is not installed");
        Cluster cluster = Cluster.shared();
        if (!Files.isDirectory(dir.resolve("node_modules/openai"))) {
            int rc = run(dir, List.of("npm", "ci", "--no-audit", "--no-fund"), Map.of(), Duration.ofMinutes(5));
            assertEquals(0, rc, "npm ci failed");
        }
        OpenAiSdkSystemTest.Generated chat = cluster.cliChat(QUESTION, MAX_TOKENS);
        OpenAiSdkSystemTest.Generated completion = cluster.cliPrompt(PROMPT, MAX_TOKENS);
        String[] split = Cluster.split(chat.text());
        Map<String, Object> expected = new LinkedHashMap<>();
        expected.put("question", QUESTION);
        expected.put("prompt", PROMPT);
        expected.put("maxTokens", MAX_TOKENS);
        expected.put("chat", Map.of("reasoning", split[0], "content", split[1], "tokens", chat.ids().size()));
        expected.put("completion", Map.of("text", completion.text(), "tokens", completion.ids().size()));
        Path file = cluster.processes.logDir().resolve("node-expected.json");
        Files.writeString(file, Json.write(expected), StandardCharsets.UTF_8);
        int rc = run(dir, List.of("node", "--test", "--test-reporter=tap", "openai-sdk.test.mjs"), Map.of(
                "RINGSERVE_BASE_URL", cluster.baseUrl(), "RINGSERVE_API_KEY", Cluster.API_KEY,
                "RINGSERVE_MODEL", Cluster.MODEL_ID, "RINGSERVE_EXPECTED", file.toString()), Duration.ofMinutes(3));
        assertEquals(0, rc, "node --test failed; its TAP output is above");
    }

    private static boolean available(String tool) {
        try {
            Process p = new ProcessBuilder(tool, "--version").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** Runs a command in {@code dir}, echoing its output, within the timeout; returns the exit status. */
    private static int run(Path dir, List<String> command, Map<String, String> env, Duration timeout) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true);
        pb.environment().putAll(env);
        Process p = pb.start();
        Thread echo = Thread.ofVirtual().start(() -> {
            try {
                p.getInputStream().transferTo(System.out);
            } catch (IOException e) {
                // the process went away
            }
        });
        if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            p.destroyForcibly();
            throw new AssertionError(String.join(" ", command) + " did not finish within " + timeout);
        }
        echo.join(5000);
        return p.exitValue();
    }
}
