package blobstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// S3PartSize is the size of the parts in which an upload goes to S3, and
// so the memory one upload holds at a time. An upload no longer than this
// goes in a single PUT; a longer one as a multipart upload, whose parts
// must be at least 5 MiB (the S3 minimum) except the last.
const S3PartSize = 8 << 20

// cleanupTimeout bounds the removal of a failed upload's object, which
// runs even when the upload's context has ended.
const cleanupTimeout = 30 * time.Second

// S3Config says where an S3 store keeps its blobs.
type S3Config struct {
	// Endpoint is the service's URL, such as "https://s3.us-east-1.amazonaws.com"
	// or "http://127.0.0.1:9000"; a bare host[:port] means https. Empty
	// means "https://s3.amazonaws.com".
	Endpoint string
	// Region is the bucket's region; empty lets the client ask the service.
	Region string
	// Bucket must exist; NewS3 checks that it does.
	Bucket string
	// AccessKey and SecretKey are static credentials. When both are empty
	// the credentials come from the environment (AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) or, on AWS, from the
	// instance's IAM role.
	AccessKey, SecretKey string
	// PathStyle addresses the bucket in the URL's path rather than in its
	// host name; MinIO and most self-hosted services want it. Without it
	// the client picks the style the endpoint is known to use.
	PathStyle bool
	// Prefix, if set, is put before every object key, so that one bucket
	// can hold other data too: "pds" gives "pds/blocks/...".
	Prefix string
}

// S3 is a Store on an S3-compatible object store. Objects are named
//
//	<prefix>blocks/<did>/<cid>      permanent blobs
//	<prefix>tmp/<did>/<key>         temporary blobs
//
// the layout the reference PDS uses, so a bucket it filled can be served
// as it is. (A DID too long for an object key is named by its hash.)
//
// An upload is buffered in memory one part (S3PartSize) at a time before
// it is sent, so no request to S3 waits on a slow client. MakePermanent is
// a server-side copy followed by a delete of the temporary object.
type S3 struct {
	client *minio.Client
	bucket string
	prefix string
}

var _ Store = (*S3)(nil)

// NewS3 connects to the object store cfg names and checks that its bucket
// exists.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("blobstore: s3: no bucket")
	}
	host, secure, err := parseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	var creds *credentials.Credentials
	switch {
	case cfg.AccessKey != "" && cfg.SecretKey != "":
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	case cfg.AccessKey != "" || cfg.SecretKey != "":
		return nil, errors.New("blobstore: s3: an access key needs its secret key, and the other way round")
	default:
		creds = credentials.NewChainCredentials([]credentials.Provider{&credentials.EnvAWS{}, &credentials.IAM{}})
	}
	prefix := cfg.Prefix
	if strings.HasPrefix(prefix, "/") {
		return nil, fmt.Errorf("blobstore: s3: prefix %q must not start with '/'", prefix)
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("blobstore: s3: %w", err)
	}
	ok, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("blobstore: s3: bucket %q: %w", cfg.Bucket, err)
	}
	if !ok {
		return nil, fmt.Errorf("blobstore: s3: bucket %q does not exist", cfg.Bucket)
	}
	return &S3{client: client, bucket: cfg.Bucket, prefix: prefix}, nil
}

// parseEndpoint splits an endpoint URL into the host[:port] the client
// wants and whether to use TLS.
func parseEndpoint(endpoint string) (host string, secure bool, err error) {
	if endpoint == "" {
		return "s3.amazonaws.com", true, nil
	}
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", false, fmt.Errorf("blobstore: s3: endpoint: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", false, fmt.Errorf("blobstore: s3: endpoint %q: scheme must be http or https", endpoint)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", false, fmt.Errorf("blobstore: s3: endpoint %q: want scheme://host[:port] and nothing else", endpoint)
	}
	return u.Host, u.Scheme == "https", nil
}

func (s *S3) tempPrefix() string { return s.prefix + "tmp/" }

func (s *S3) tempAccountPrefix(did syntax.DID) string {
	return s.tempPrefix() + accountName(did, false) + "/"
}

func (s *S3) permAccountPrefix(did syntax.DID) string {
	return s.prefix + "blocks/" + accountName(did, false) + "/"
}

func (s *S3) tempObject(did syntax.DID, key string) string { return s.tempAccountPrefix(did) + key }

func (s *S3) permObject(did syntax.DID, cid data.CID) string {
	return s.permAccountPrefix(did) + cid.String()
}

// isNotFound reports whether err is S3's answer for a missing object.
func isNotFound(err error) bool {
	return minio.ToErrorResponse(err).Code == minio.NoSuchKey
}

// PutTemp implements Store.
func (s *S3) PutTemp(ctx context.Context, did syntax.DID, r io.Reader, maxSize int64) (TempBlob, error) {
	if err := checkPut(did, r, maxSize); err != nil {
		return TempBlob{}, err
	}
	if err := ctx.Err(); err != nil {
		return TempBlob{}, err
	}
	key := newTempKey()
	object := s.tempObject(did, key)
	br := newBlobReader(ctx, r, maxSize)
	// Each request carries the MD5 of its body, which the service checks,
	// rather than a SHA-256 of it in the signature. Over plain HTTP the
	// client would otherwise send bodies in the aws-chunked streaming
	// encoding, which not every S3-compatible service takes (and with
	// which it sends an empty body without a length); over HTTPS it signs
	// no payload hash either way.
	opts := minio.PutObjectOptions{
		ContentType:          "application/octet-stream",
		SendContentMd5:       true,
		DisableContentSha256: true,
	}

	// Read the first part. If the upload ends within it, it goes in one
	// PUT of known length; otherwise as a multipart upload of unknown
	// length, which the client aborts if the rest of the stream fails.
	first, err := readUpTo(br, S3PartSize)
	switch {
	case err == io.EOF:
		_, err = s.client.PutObject(ctx, s.bucket, object, bytes.NewReader(first), int64(len(first)), opts)
	case err == nil:
		opts.PartSize = S3PartSize
		_, err = s.client.PutObject(ctx, s.bucket, object, io.MultiReader(bytes.NewReader(first), br), -1, opts)
	default:
		// The upload failed before anything was sent.
		if br.err != nil {
			err = br.err
		}
		if br.tooLarge() {
			return TempBlob{}, err
		}
		return TempBlob{}, fmt.Errorf("blobstore: s3: read upload: %w", err)
	}
	if err != nil {
		// Nothing should have been stored, but make sure: an object left
		// behind would only wait for CleanTemp.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		_ = s.client.RemoveObject(cctx, s.bucket, object, minio.RemoveObjectOptions{})
		cancel()
		if br.err != nil {
			err = br.err // the upload's own failure, rather than the client's wrapping of it
		}
		if br.tooLarge() {
			return TempBlob{}, err
		}
		return TempBlob{}, fmt.Errorf("blobstore: s3: store upload: %w", err)
	}
	return br.result(key), nil
}

// readUpTo reads r until it has max bytes, returning them with a nil
// error, or until r ends, returning what came with io.EOF. Its buffer grows
// with the data, up to max and no further.
func readUpTo(r io.Reader, max int) ([]byte, error) {
	buf := make([]byte, 0, min(max, 64<<10))
	for len(buf) < max {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
			buf = buf[:len(buf):min(cap(buf), max)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// MakePermanent implements Store. It copies first and asks questions only
// if that fails, as the temporary object is normally there.
func (s *S3) MakePermanent(ctx context.Context, did syntax.DID, tempKey string, cid data.CID) error {
	if err := checkDID(did); err != nil {
		return err
	}
	if err := checkTempKey(tempKey); err != nil {
		return err
	}
	if err := checkCID(cid); err != nil {
		return err
	}
	src, dst := s.tempObject(did, tempKey), s.permObject(did, cid)
	_, err := s.client.CopyObject(ctx,
		minio.CopyDestOptions{Bucket: s.bucket, Object: dst},
		minio.CopySrcOptions{Bucket: s.bucket, Object: src})
	if err != nil {
		if !isNotFound(err) {
			return fmt.Errorf("blobstore: s3: %w", err)
		}
		has, herr := s.has(ctx, dst)
		if herr != nil {
			return herr
		}
		if !has {
			return fmt.Errorf("%w: temporary blob %s of %s", ErrNotFound, tempKey, did)
		}
		return nil // made permanent before, from this upload or another
	}
	// The blob is permanent now. Should the delete fail, CleanTemp removes
	// the temporary copy later.
	_ = s.client.RemoveObject(ctx, s.bucket, src, minio.RemoveObjectOptions{})
	return nil
}

// Get implements Store. The reader is a *minio.Object, which also
// implements io.Seeker and io.ReaderAt.
func (s *S3) Get(ctx context.Context, did syntax.DID, cid data.CID) (io.ReadCloser, int64, error) {
	if err := checkDID(did); err != nil {
		return nil, 0, err
	}
	if err := checkCID(cid); err != nil {
		return nil, 0, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, s.permObject(did, cid), minio.GetObjectOptions{})
	if err != nil {
		return nil, 0, fmt.Errorf("blobstore: s3: %w", err)
	}
	info, err := obj.Stat()
	if err != nil {
		obj.Close()
		if isNotFound(err) {
			return nil, 0, fmt.Errorf("%w: %s of %s", ErrNotFound, cid, did)
		}
		return nil, 0, fmt.Errorf("blobstore: s3: %w", err)
	}
	return obj, info.Size, nil
}

// Has implements Store.
func (s *S3) Has(ctx context.Context, did syntax.DID, cid data.CID) (bool, error) {
	if err := checkDID(did); err != nil {
		return false, err
	}
	if err := checkCID(cid); err != nil {
		return false, err
	}
	return s.has(ctx, s.permObject(did, cid))
}

func (s *S3) has(ctx context.Context, object string) (bool, error) {
	_, err := s.client.StatObject(ctx, s.bucket, object, minio.StatObjectOptions{})
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("blobstore: s3: %w", err)
}

// Delete implements Store, with multi-object deletes of up to 1000 keys.
func (s *S3) Delete(ctx context.Context, did syntax.DID, cids ...data.CID) error {
	if err := checkDID(did); err != nil {
		return err
	}
	for _, c := range cids {
		if err := checkCID(c); err != nil {
			return err
		}
	}
	if len(cids) == 0 {
		return nil
	}
	return s.remove(ctx, func(yield func(minio.ObjectInfo) bool) {
		for _, c := range cids {
			if !yield(minio.ObjectInfo{Key: s.permObject(did, c)}) {
				return
			}
		}
	})
}

// DeleteTemp implements Store.
func (s *S3) DeleteTemp(ctx context.Context, did syntax.DID, tempKey string) error {
	if err := checkDID(did); err != nil {
		return err
	}
	if err := checkTempKey(tempKey); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, s.bucket, s.tempObject(did, tempKey), minio.RemoveObjectOptions{})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("blobstore: s3: %w", err)
	}
	return nil
}

// DeleteAll implements Store by listing the account's objects.
func (s *S3) DeleteAll(ctx context.Context, did syntax.DID) error {
	if err := checkDID(did); err != nil {
		return err
	}
	return errors.Join(
		s.removeListed(ctx, s.permAccountPrefix(did), nil),
		s.removeListed(ctx, s.tempAccountPrefix(did), nil),
	)
}

// CleanTemp implements Store by listing the temporary area and going by
// the objects' last-modified times. (A bucket lifecycle rule that expires
// "<prefix>tmp/" after a day does the same job on the service's side.)
func (s *S3) CleanTemp(ctx context.Context, olderThan time.Time) error {
	return s.removeListed(ctx, s.tempPrefix(), func(o minio.ObjectInfo) bool {
		return o.LastModified.Before(olderThan)
	})
}

// removeListed removes the objects under prefix for which match (nil:
// all) returns true.
func (s *S3) removeListed(ctx context.Context, prefix string, match func(minio.ObjectInfo) bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var listErr error
	err := s.remove(ctx, func(yield func(minio.ObjectInfo) bool) {
		for o := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if o.Err != nil {
				listErr = fmt.Errorf("blobstore: s3: list %s: %w", prefix, o.Err)
				return
			}
			if match != nil && !match(o) {
				continue
			}
			if !yield(minio.ObjectInfo{Key: o.Key}) {
				return
			}
		}
	})
	return errors.Join(listErr, err)
}

// remove deletes the objects objs yields, in batches, and gathers the
// errors; an object already gone is not one.
func (s *S3) remove(ctx context.Context, objs iter.Seq[minio.ObjectInfo]) error {
	results, err := s.client.RemoveObjectsWithIter(ctx, s.bucket, objs, minio.RemoveObjectsOptions{})
	if err != nil {
		return fmt.Errorf("blobstore: s3: %w", err)
	}
	var errs []error
	for res := range results {
		if res.Err != nil && !isNotFound(res.Err) {
			errs = append(errs, fmt.Errorf("blobstore: s3: delete %s: %w", res.ObjectName, res.Err))
		}
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
