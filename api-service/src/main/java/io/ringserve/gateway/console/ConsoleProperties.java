package io.ringserve.gateway.console;

import jakarta.validation.constraints.NotBlank;
import java.util.List;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;
import org.springframework.validation.annotation.Validated;

/**
 * Who may read the operations console's API ({@code /console/api/**}), bound from {@code ringserve.gateway.*}
 * next to the API keys.
 *
 * @param adminKeys     accepted admin keys ({@code Authorization: Bearer <key>}); kept only as SHA-256 hashes
 * @param adminKeysFile file with one admin key per line (blank lines and {@code #} comments ignored)
 */
@Validated
@ConfigurationProperties("ringserve.gateway")
public record ConsoleProperties(@DefaultValue List<@NotBlank String> adminKeys, String adminKeysFile) {
}
