package io.ringserve.gateway.config;

import jakarta.validation.Valid;
import jakarta.validation.constraints.Max;
import jakarta.validation.constraints.Min;
import jakarta.validation.constraints.NotBlank;
import jakarta.validation.constraints.NotNull;
import jakarta.validation.constraints.Pattern;
import java.time.Duration;
import java.util.List;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;
import org.springframework.validation.annotation.Validated;

/**
 * Settings of the gateway, bound from {@code ringserve.gateway.*}. An invalid value fails startup with a
 * message naming the property.
 *
 * @param modelDir    Hugging Face model directory holding tokenizer.json, tokenizer_config.json,
 *                    config.json and generation_config.json (no weights needed)
 * @param modelId     model name clients pass as {@code model} and {@code GET /v1/models} lists
 * @param workers     where the inference workers are and how often they are polled
 * @param queue       the bounded admission queue
 * @param limits      request size and per-key limits
 * @param apiKeys     accepted API keys; empty (and no {@code api-keys-file}) turns authentication off
 * @param apiKeysFile file with one accepted API key per line (blank lines and {@code #} comments ignored)
 * @param timeouts    time limits of one request
 * @param maxAttempts most worker calls one request may use (first try, retries and replays together)
 */
@Validated
@ConfigurationProperties("ringserve.gateway")
public record GatewayProperties(
        @NotBlank String modelDir,
        @DefaultValue("inclusionAI/Ring-mini-2.0") @NotBlank String modelId,
        @DefaultValue @Valid @NotNull Workers workers,
        @DefaultValue @Valid @NotNull Queue queue,
        @DefaultValue @Valid @NotNull Limits limits,
        @DefaultValue List<@NotBlank String> apiKeys,
        String apiKeysFile,
        @DefaultValue @Valid @NotNull Timeouts timeouts,
        @DefaultValue("3") @Min(1) @Max(10) int maxAttempts) {

    /**
     * Worker discovery.
     *
     * @param addresses       static worker addresses, {@code host:port} each
     * @param dnsName         DNS name (e.g. a headless Service) resolved to every worker address; empty for none
     * @param dnsPort         gRPC port of the workers found through {@code dns-name}
     * @param refreshInterval how often {@code dns-name} is resolved again
     * @param pollInterval    how often each worker's health and load are polled
     */
    public record Workers(
            @DefaultValue List<@Pattern(regexp = "[^:\\s]+:\\d{1,5}", message = "must be host:port") String> addresses,
            String dnsName,
            @DefaultValue("50051") @Min(1) @Max(65535) int dnsPort,
            @DefaultValue("30s") @NotNull Duration refreshInterval,
            @DefaultValue("1s") @NotNull Duration pollInterval) {
    }

    /**
     * Admission queue in front of the workers.
     *
     * @param size    requests that may wait for a worker at once; one more gets 429
     * @param maxWait longest a request waits for a worker before it gets 503
     */
    public record Queue(@DefaultValue("256") @Min(0) int size, @DefaultValue("30s") @NotNull Duration maxWait) {
    }

    /**
     * Request limits.
     *
     * @param maxBodyBytes           largest accepted request body; larger gets 413
     * @param perKeyConcurrency      requests one API key may have running at once; 0 is unlimited
     * @param perKeyTokensPerSecond  sustained rate of prompt + completion tokens one key may use; 0 is unlimited
     * @param perKeyBurstTokens      token bucket size of one key (the burst allowed above the rate)
     * @param defaultMaxTokens       completion tokens granted when a request sets no max_tokens (capped by the
     *                               context left after the prompt)
     */
    public record Limits(
            @DefaultValue("1048576") @Min(1024) long maxBodyBytes,
            @DefaultValue("0") @Min(0) int perKeyConcurrency,
            @DefaultValue("0") @Min(0) long perKeyTokensPerSecond,
            @DefaultValue("100000") @Min(1) long perKeyBurstTokens,
            @DefaultValue("8192") @Min(1) int defaultMaxTokens) {
    }

    /**
     * Time limits.
     *
     * @param firstToken         longest a worker may take to send the first token before the call is retried elsewhere
     * @param keepAliveInterval  interval of {@code : keep-alive} comment lines on a stream while no token arrives
     */
    public record Timeouts(
            @DefaultValue("60s") @NotNull Duration firstToken,
            @DefaultValue("5s") @NotNull Duration keepAliveInterval) {
    }
}
