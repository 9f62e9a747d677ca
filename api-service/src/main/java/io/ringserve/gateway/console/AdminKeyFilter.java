package io.ringserve.gateway.console;

import io.ringserve.gateway.api.ApiException;
import io.ringserve.gateway.api.OpenAiHandler;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;
import org.springframework.http.HttpStatus;
import org.springframework.web.reactive.function.server.HandlerFilterFunction;
import org.springframework.web.reactive.function.server.HandlerFunction;
import org.springframework.web.reactive.function.server.ServerRequest;
import org.springframework.web.reactive.function.server.ServerResponse;
import reactor.core.publisher.Mono;

/**
 * Admin key check for the console API: {@code Authorization: Bearer <admin key>}. Keys are kept only as
 * SHA-256 hashes and compared in constant time. With no admin key configured the console API is open only
 * when API authentication is off as well (a local, keyless setup); otherwise it answers 403.
 */
public final class AdminKeyFilter implements HandlerFilterFunction<ServerResponse, ServerResponse> {
    /** How the console API is guarded. */
    public enum Mode {
        /** admin keys are configured: one of them is required */
        KEYS,
        /** neither admin keys nor API keys are configured: open, like the API */
        OPEN,
        /** API keys are configured but no admin key: refused with 403 */
        DISABLED
    }

    private final List<byte[]> hashes;
    private final Mode mode;

    /**
     * @param properties    the admin keys
     * @param apiAuthOn     whether the public API requires API keys
     */
    public AdminKeyFilter(ConsoleProperties properties, boolean apiAuthOn) {
        List<byte[]> h = new ArrayList<>();
        properties.adminKeys().forEach(k -> h.add(sha256(k.strip())));
        String file = properties.adminKeysFile();
        if (file != null && !file.isBlank()) {
            try {
                for (String line : Files.readAllLines(Path.of(file))) {
                    String k = line.strip();
                    if (!k.isEmpty() && !k.startsWith("#")) {
                        h.add(sha256(k));
                    }
                }
            } catch (IOException e) {
                throw new UncheckedIOException("ringserve.gateway.admin-keys-file: cannot read " + file, e);
            }
        }
        this.hashes = List.copyOf(h);
        this.mode = !hashes.isEmpty() ? Mode.KEYS : apiAuthOn ? Mode.DISABLED : Mode.OPEN;
    }

    public Mode mode() {
        return mode;
    }

    @Override
    public Mono<ServerResponse> filter(ServerRequest request, HandlerFunction<ServerResponse> next) {
        switch (mode) {
            case OPEN -> {
                return next.handle(request);
            }
            case DISABLED -> {
                return OpenAiHandler.error(new ApiException(HttpStatus.FORBIDDEN, "permission_error",
                        "The operations console is disabled: API keys are configured but no admin key is. "
                                + "Set ringserve.gateway.admin-keys (or admin-keys-file) to enable it.",
                        null, "console_disabled", null));
            }
            default -> {
                String header = request.headers().firstHeader("Authorization");
                if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
                    return OpenAiHandler.error(unauthorized(
                            "An admin key is required: send it in the Authorization header (Bearer <key>)."));
                }
                byte[] given = sha256(header.substring(7).strip());
                boolean ok = false;
                for (byte[] h : hashes) {
                    ok |= MessageDigest.isEqual(h, given);
                }
                return ok ? next.handle(request) : OpenAiHandler.error(unauthorized("Incorrect admin key provided."));
            }
        }
    }

    private static ApiException unauthorized(String message) {
        return new ApiException(HttpStatus.UNAUTHORIZED, "invalid_request_error", message, null, "invalid_admin_key", null);
    }

    private static byte[] sha256(String key) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
