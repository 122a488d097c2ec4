import { S3Client } from '@aws-sdk/client-s3';
import type { Endpoints } from '../endpoints.js';

/**
 * An S3 client from validated endpoint settings. Without static credentials
 * the AWS SDK's default provider chain (environment, profile, instance role)
 * applies, as in production.
 */
export function createS3(config: Endpoints['s3']): S3Client {
  return new S3Client({
    region: config.region,
    forcePathStyle: config.forcePathStyle,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    ...(config.credentials ? { credentials: config.credentials } : {}),
  });
}
