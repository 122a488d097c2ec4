import { DeleteBucketCommand, DeleteObjectsCommand, ListObjectVersionsCommand, type S3Client } from '@aws-sdk/client-s3';

/**
 * Deletes a bench's scratch bucket: every object version and delete marker
 * (a versioned bucket keeps them all), a page of up to 1 000 at a time,
 * then the bucket. Only for buckets made without Object Lock.
 */
export async function deleteBucket(s3: S3Client, bucket: string): Promise<void> {
  for (;;) {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket }));
    const objects = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => ({ Key: v.Key!, VersionId: v.VersionId }));
    if (objects.length === 0) break;
    const out = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }));
    if (out.Errors?.length) throw new Error(`deleting objects of ${bucket}: ${out.Errors[0]!.Key} ${out.Errors[0]!.Code} ${out.Errors[0]!.Message}`);
  }
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
}
