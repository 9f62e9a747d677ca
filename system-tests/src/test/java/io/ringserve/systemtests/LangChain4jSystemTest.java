package io.ringserve.systemtests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.PartialThinking;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** LangChain4j's OpenAI module against the shared cluster: blocking and streaming, with the thinking returned. */
@Timeout(300)
class LangChain4jSystemTest {
    private static final String QUESTION = "What is a ring?";
    private static final int MAX_TOKENS = 24;

    @Test
    void blockingChatReturnsThinkingAndAnswerEqualToTheCli() {
        Cluster cluster = Cluster.shared();
        OpenAiChatModel model = OpenAiChatModel.builder().baseUrl(cluster.baseUrl()).apiKey(Cluster.API_KEY)
                .modelName(Cluster.MODEL_ID).temperature(0.0).maxCompletionTokens(MAX_TOKENS).returnThinking(true)
                .maxRetries(0).timeout(Duration.ofSeconds(30)).build();
        ChatResponse response = model.chat(ChatRequest.builder().messages(UserMessage.from(QUESTION)).build());
        String[] expected = Cluster.split(cluster.cliChat(QUESTION, MAX_TOKENS).text());
        AiMessage message = response.aiMessage();
        assertEquals(expected[0], message.thinking(), "thinking (reasoning_content)");
        assertEquals(expected[1], message.text() == null ? "" : message.text(), "text");
        int tokens = cluster.cliChat(QUESTION, MAX_TOKENS).ids().size();
        assertEquals(tokens, response.tokenUsage().outputTokenCount());
        assertEquals(Cluster.MODEL_ID, response.modelName());
        assertNotNull(response.finishReason());
    }

    @Test
    void streamingChatDeliversThinkingAndAnswerEqualToTheCli() throws Exception {
        Cluster cluster = Cluster.shared();
        OpenAiStreamingChatModel model = OpenAiStreamingChatModel.builder().baseUrl(cluster.baseUrl()).apiKey(Cluster.API_KEY)
                .modelName(Cluster.MODEL_ID).temperature(0.0).maxCompletionTokens(MAX_TOKENS).returnThinking(true)
                .timeout(Duration.ofSeconds(30)).build();
        StringBuilder partial = new StringBuilder();
        StringBuilder thinking = new StringBuilder();
        CompletableFuture<ChatResponse> done = new CompletableFuture<>();
        model.chat(ChatRequest.builder().messages(UserMessage.from(QUESTION)).build(), new StreamingChatResponseHandler() {
            @Override
            public void onPartialResponse(String text) {
                partial.append(text);
            }

            @Override
            public void onPartialThinking(PartialThinking t) {
                thinking.append(t.text());
            }

            @Override
            public void onCompleteResponse(ChatResponse response) {
                done.complete(response);
            }

            @Override
            public void onError(Throwable error) {
                done.completeExceptionally(error);
            }
        });
        ChatResponse response = done.get(60, TimeUnit.SECONDS);
        String[] expected = Cluster.split(cluster.cliChat(QUESTION, MAX_TOKENS).text());
        assertFalse(thinking.isEmpty(), "no partial thinking arrived");
        assertEquals(expected[0], thinking.toString(), "streamed thinking");
        assertEquals(expected[1], partial.toString(), "streamed text");
        assertEquals(expected[0], response.aiMessage().thinking(), "thinking of the complete response");
        String text = response.aiMessage().text();
        assertEquals(expected[1], text == null ? "" : text);
        assertTrue(response.finishReason() != null, "finish reason");
    }
}
