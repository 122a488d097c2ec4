import { S3Client } from '@aws-sdk/client-s3';
import type { Endpoints } from '../endpoints.js';

/**
 * An S3 client from validated endpoint settings. Without static credentials
 * the AWS SDK's default provider chain (environment, profile, instance role)
 * applies, as in production. Connections and requests time out (the SDK's
 * default is to wait forever on a server that accepts and never answers);
 * the idle timeout is the longest silence on an open request, so large
 * transfers that keep moving are not cut.
 */
export function createS3(config: Endpoints['s3']): S3Client {
  return new S3Client({
    region: config.region,
    forcePathStyle: config.forcePathStyle,
    // socketTimeout is the SDK's inactivity timeout (its requestTimeout only warns, and would bound a whole transfer).
    requestHandler: { connectionTimeout: config.connectTimeoutMs, socketTimeout: config.idleTimeoutMs },
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    ...(config.credentials ? { credentials: config.credentials } : {}),
  });
}
