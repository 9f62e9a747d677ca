package io.ringserve.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.ringserve.gateway.api.ApiException;
import io.ringserve.gateway.config.GatewayProperties;
import io.ringserve.gateway.observability.GatewayMetrics;
import io.ringserve.gateway.security.KeyLimiter;
import org.junit.jupiter.api.Test;

class GatewayKeyLimiterTests {
    final GatewayMetrics metrics = new GatewayMetrics(new SimpleMeterRegistry());

    @Test
    void perKeyConcurrencyLimitGives429() {
        KeyLimiter limiter = new KeyLimiter(new GatewayProperties.Limits(1 << 20, 1, 0, 1000, 100), metrics);
        KeyLimiter.Permit first = limiter.admit("a", 10);
        assertThatThrownBy(() -> limiter.admit("a", 10)).isInstanceOfSatisfying(ApiException.class,
                e -> assertThat(e.status().value()).isEqualTo(429));
        limiter.admit("b", 10).release();
        first.release();
        limiter.admit("a", 10).release();
    }

    @Test
    void tokenBucketGives429WithRetryAfter() {
        KeyLimiter limiter = new KeyLimiter(new GatewayProperties.Limits(1 << 20, 0, 10, 100, 100), metrics);
        limiter.admit("a", 100).release();
        assertThatThrownBy(() -> limiter.admit("a", 50)).isInstanceOfSatisfying(ApiException.class, e -> {
            assertThat(e.status().value()).isEqualTo(429);
            assertThat(e.retryAfterSeconds()).isBetween(4L, 5L);
        });
    }
}
