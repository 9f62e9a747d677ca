package io.ringserve.gateway.security;

import io.ringserve.gateway.api.ApiException;
import io.ringserve.gateway.api.OpenAiHandler;
import io.ringserve.gateway.observability.GatewayMetrics;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.springframework.http.HttpStatus;
import org.springframework.web.reactive.function.server.HandlerFilterFunction;
import org.springframework.web.reactive.function.server.HandlerFunction;
import org.springframework.web.reactive.function.server.ServerRequest;
import org.springframework.web.reactive.function.server.ServerResponse;
import reactor.core.publisher.Mono;

/**
 * API key check for every {@code /v1/**} route: {@code Authorization: Bearer <key>}. Keys are kept only as
 * SHA-256 hashes and compared in constant time. No keys configured means authentication is off.
 */
public final class ApiKeyFilter implements HandlerFilterFunction<ServerResponse, ServerResponse> {
    private final List<byte[]> hashes;
    private final GatewayMetrics metrics;

    /**
     * @param keys     keys from configuration
     * @param keysFile file with one key per line, or null
     */
    public ApiKeyFilter(List<String> keys, String keysFile, GatewayMetrics metrics) {
        this.metrics = metrics;
        List<byte[]> h = new ArrayList<>();
        keys.forEach(k -> h.add(sha256(k.strip())));
        if (keysFile != null && !keysFile.isBlank()) {
            try {
                for (String line : Files.readAllLines(Path.of(keysFile))) {
                    String k = line.strip();
                    if (!k.isEmpty() && !k.startsWith("#")) {
                        h.add(sha256(k));
                    }
                }
            } catch (IOException e) {
                throw new UncheckedIOException("ringserve.gateway.api-keys-file: cannot read " + keysFile, e);
            }
        }
        this.hashes = List.copyOf(h);
    }

    /** Whether any key is configured. */
    public boolean enabled() {
        return !hashes.isEmpty();
    }

    @Override
    public Mono<ServerResponse> filter(ServerRequest request, HandlerFunction<ServerResponse> next) {
        if (hashes.isEmpty()) {
            return next.handle(request);
        }
        String header = request.headers().firstHeader("Authorization");
        if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
            metrics.rejected("unauthorized");
            return OpenAiHandler.error(unauthorized("You didn't provide an API key. Provide it in the Authorization header (Bearer <key>)."));
        }
        byte[] given = sha256(header.substring(7).strip());
        boolean ok = false;
        for (byte[] h : hashes) {
            ok |= MessageDigest.isEqual(h, given);
        }
        if (!ok) {
            metrics.rejected("unauthorized");
            return OpenAiHandler.error(unauthorized("Incorrect API key provided."));
        }
        request.exchange().getAttributes().put(KeyLimiter.KEY_ATTRIBUTE, HexFormat.of().formatHex(given));
        return next.handle(request);
    }

    private static ApiException unauthorized(String message) {
        return new ApiException(HttpStatus.UNAUTHORIZED, "invalid_request_error", message, null, "invalid_api_key", null);
    }

    private static byte[] sha256(String key) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
