package io.ringserve.gateway.security;

import io.ringserve.gateway.api.ApiException;
import io.ringserve.gateway.config.GatewayProperties;
import io.ringserve.gateway.observability.GatewayMetrics;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Per-API-key limits: requests running at once, and a token bucket of prompt + max completion tokens per
 * second. Exceeding either gives 429 with Retry-After.
 */
public final class KeyLimiter {
    /** Exchange attribute holding the caller's key hash (hex), or absent when authentication is off. */
    public static final String KEY_ATTRIBUTE = "ringserve.apiKeyHash";

    private final GatewayProperties.Limits limits;
    private final GatewayMetrics metrics;
    private final Map<String, AtomicInteger> running = new ConcurrentHashMap<>();
    private final Map<String, Bucket> buckets = new ConcurrentHashMap<>();

    public KeyLimiter(GatewayProperties.Limits limits, GatewayMetrics metrics) {
        this.limits = limits;
        this.metrics = metrics;
    }

    /** Admits one request costing {@code tokens}; release the permit when it ends. */
    public Permit admit(String key, long tokens) {
        String k = key == null ? "" : key;
        if (limits.perKeyTokensPerSecond() > 0) {
            long wait = buckets.computeIfAbsent(k, x -> new Bucket(limits.perKeyBurstTokens())).take(
                    Math.min(tokens, limits.perKeyBurstTokens()), limits.perKeyTokensPerSecond(), limits.perKeyBurstTokens());
            if (wait > 0) {
                metrics.rejected("rate_limited");
                throw ApiException.tooMany("Rate limit reached for tokens per second; retry later", "rate_limit_exceeded", wait);
            }
        }
        AtomicInteger count = running.computeIfAbsent(k, x -> new AtomicInteger());
        if (limits.perKeyConcurrency() > 0 && count.incrementAndGet() > limits.perKeyConcurrency()) {
            count.decrementAndGet();
            metrics.rejected("concurrency_limited");
            throw ApiException.tooMany("Too many concurrent requests for this API key", "concurrency_limit_exceeded", 1);
        }
        if (limits.perKeyConcurrency() <= 0) {
            count.incrementAndGet();
        }
        return new Permit(count);
    }

    /** A running request of one key. */
    public static final class Permit {
        private final AtomicInteger count;
        private final AtomicBoolean released = new AtomicBoolean();

        Permit(AtomicInteger count) {
            this.count = count;
        }

        /** Ends the request; later calls do nothing. */
        public void release() {
            if (released.compareAndSet(false, true)) {
                count.decrementAndGet();
            }
        }
    }

    private static final class Bucket {
        private double tokens;
        private long last = System.nanoTime();

        Bucket(long burst) {
            tokens = burst;
        }

        /** Takes n tokens, or returns the seconds to wait until they are there. */
        synchronized long take(long n, long rate, long burst) {
            long now = System.nanoTime();
            tokens = Math.min(burst, tokens + (now - last) / 1e9 * rate);
            last = now;
            if (tokens >= n) {
                tokens -= n;
                return 0;
            }
            return Math.max(1, (long) Math.ceil((n - tokens) / rate));
        }
    }
}
