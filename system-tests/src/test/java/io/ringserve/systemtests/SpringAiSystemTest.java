package io.ringserve.systemtests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Objects;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.openai.OpenAiChatModel;
import org.springframework.ai.openai.OpenAiChatOptions;

/**
 * Spring AI's OpenAI chat model (2.x, the line for Spring Boot 4 / Spring Framework 7) against the shared
 * cluster: blocking and streaming; the thinking arrives in the message metadata {@code reasoningContent}.
 */
@Timeout(300)
class SpringAiSystemTest {
    private static final String QUESTION = "What is a ring?";
    private static final int MAX_TOKENS = 24;

    private static OpenAiChatModel model(Cluster cluster) {
        return OpenAiChatModel.builder().options(OpenAiChatOptions.builder().baseUrl(cluster.baseUrl())
                .apiKey(Cluster.API_KEY).model(Cluster.MODEL_ID).temperature(0.0).maxCompletionTokens(MAX_TOKENS)
                .maxRetries(0).timeout(Duration.ofSeconds(30)).build()).build();
    }

    private static String reasoning(AssistantMessage m) {
        Object r = m.getMetadata().get("reasoningContent");
        return r == null ? "" : r.toString();
    }

    @Test
    void blockingCallReturnsThinkingAndAnswerEqualToTheCli() {
        Cluster cluster = Cluster.shared();
        ChatResponse response = model(cluster).call(new Prompt(QUESTION));
        String[] expected = Cluster.split(cluster.cliChat(QUESTION, MAX_TOKENS).text());
        AssistantMessage m = response.getResult().getOutput();
        assertEquals(expected[1], Objects.requireNonNullElse(m.getText(), ""), "text");
        assertEquals(expected[0], reasoning(m), () -> "reasoningContent; metadata: " + m.getMetadata());
        assertEquals(cluster.cliChat(QUESTION, MAX_TOKENS).ids().size(),
                response.getMetadata().getUsage().getCompletionTokens());
        assertNotNull(response.getResult().getMetadata().getFinishReason());
    }

    @Test
    void streamingCallDeliversThinkingAndAnswerEqualToTheCli() {
        Cluster cluster = Cluster.shared();
        List<ChatResponse> chunks = model(cluster).stream(new Prompt(QUESTION)).collectList().block(Duration.ofSeconds(60));
        assertNotNull(chunks);
        assertFalse(chunks.isEmpty());
        StringBuilder text = new StringBuilder();
        // Spring AI's chunk merger puts the reasoning so far (accumulated, not the delta) in each chunk's metadata
        String thinking = "";
        String finish = null;
        for (ChatResponse c : chunks) {
            if (c.getResult() == null) {
                continue;
            }
            AssistantMessage m = c.getResult().getOutput();
            text.append(Objects.requireNonNullElse(m.getText(), ""));
            String r = reasoning(m);
            if (!r.isEmpty()) {
                assertTrue(r.startsWith(thinking), "reasoningContent only grows");
                thinking = r;
            }
            String f = c.getResult().getMetadata().getFinishReason();
            if (f != null && !f.isEmpty()) {
                finish = f;
            }
        }
        String[] expected = Cluster.split(cluster.cliChat(QUESTION, MAX_TOKENS).text());
        assertEquals(expected[1], text.toString(), "streamed text");
        assertFalse(thinking.isEmpty(), "no reasoningContent arrived");
        assertEquals(expected[0], thinking, "streamed reasoningContent");
        assertNotNull(finish, "finish reason");
    }
}
