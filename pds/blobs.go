package pds

import (
	"context"
	"path/filepath"

	"github.com/welkin-atproto/welkin/pds/blobstore"
)

// openBlobStore opens the configured blob store: S3 when S3URL is set,
// otherwise the disk under DataDir.
func openBlobStore(ctx context.Context, cfg Config) (blobstore.Store, error) {
	if cfg.S3URL != "" {
		s3cfg, err := parseS3URL(cfg.S3URL)
		if err != nil {
			return nil, err
		}
		return blobstore.NewS3(ctx, s3cfg)
	}
	return blobstore.NewDisk(filepath.Join(cfg.DataDir, BlobsDir))
}
