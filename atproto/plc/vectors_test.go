package plc

import (
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Real operation logs from the public PLC directory, used as fixed vectors.
// They are the published interoperability cases of the did:plc project,
// re-entered here as Go values.

func strp(s string) *string { return &s }

type vecEntry struct {
	op        Op
	cid       string
	nullified bool
	createdAt string
}

type vecLog struct {
	did     syntax.DID
	entries []vecEntry
}

func (v vecLog) audit(t testing.TB) []AuditEntry {
	t.Helper()
	out := make([]AuditEntry, len(v.entries))
	for i, e := range v.entries {
		ts, err := time.Parse(time.RFC3339Nano, e.createdAt)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = AuditEntry{DID: v.did, Operation: e.op, CID: e.cid, Nullified: e.nullified, CreatedAt: ts}
	}
	return out
}

func (v vecLog) active() []Op {
	var ops []Op
	for _, e := range v.entries {
		if !e.nullified {
			ops = append(ops, e.op)
		}
	}
	return ops
}

func atprotoPDS(endpoint string) map[string]Service {
	return map[string]Service{"atproto_pds": {Type: "AtprotoPersonalDataServer", Endpoint: endpoint}}
}

const (
	dholmsRecovery = "did:key:zQ3shhCGUqDKjStzuDxPkTxN6ujddP4RkEKJJouJGRRkaLGbg"
	dholmsSigning  = "did:key:zQ3shP5TBe1sQfSttXty15FAEHV1DZgcxRZNxvEWnPfLFwLxJ"
)

// A 2022 log that starts with a legacy "create" operation.
func vecLegacyDholms() vecLog {
	upd := func(prev, sig, aka string, rot []string, atproto string) *Operation {
		return &Operation{
			RotationKeys:        rot,
			VerificationMethods: map[string]string{"atproto": atproto},
			AlsoKnownAs:         []string{aka},
			Services:            atprotoPDS("https://bsky.social"),
			Prev:                strp(prev),
			Sig:                 sig,
		}
	}
	oldRot := []string{dholmsRecovery, dholmsSigning}
	return vecLog{
		did: "did:plc:yk4dd2qkboz2yv6tpubpc6co",
		entries: []vecEntry{
			{
				op: &LegacyCreate{
					SigningKey:  dholmsSigning,
					RecoveryKey: dholmsRecovery,
					Handle:      "dan.bsky.social",
					Service:     "https://bsky.social",
					Sig:         "7QTzqO1BcL3eDzP4P_YBxMmv5U4brHzAItkM9w5o8gZA7ElZkrVYEwsfQCfk5EoWLk58Z1y6fyNP9x1pthJnlw",
				},
				cid:       "bafyreigcxay6ucqlwowfpu35alyxqtv3c4vsj7gmdtmnidsnqs6nblyarq",
				createdAt: "2022-11-17T01:07:13.996Z",
			},
			{
				op: upd("bafyreigcxay6ucqlwowfpu35alyxqtv3c4vsj7gmdtmnidsnqs6nblyarq",
					"n-VWsPZY4xkFN8wlg-kJBU_yzWTNd2oBnbjkjxXu3HdjbBLaEB7K39JHIPn_DZVALKRjts6bUicjSEecZy8eIw",
					"at://dholms.xyz", oldRot, dholmsSigning),
				cid:       "bafyreiho5sanautvnw3det66jcwic4vkeabc35y7iou3ygwj2l3xqcxdau",
				createdAt: "2023-03-06T18:47:09.501Z",
			},
			{
				op: upd("bafyreiho5sanautvnw3det66jcwic4vkeabc35y7iou3ygwj2l3xqcxdau",
					"HWgrfQXxUN3mhR5TR-nrwGJwVr9RDbyDn6eCmqBg32x2zIjhe98YxOtFOLI9jQkBlTTzqzUOwJh1KZd4O2pDOw",
					"at://dholms.bsky.social", oldRot, dholmsSigning),
				cid:       "bafyreic3am2nmgykxtwsxwigzn6faibxv5ef5kalcv7li3eatcqldcqrku",
				createdAt: "2023-03-06T19:50:49.987Z",
			},
			{
				op: upd("bafyreic3am2nmgykxtwsxwigzn6faibxv5ef5kalcv7li3eatcqldcqrku",
					"9Fy2iHCSK5mtgLNCkS9CyI0r7lu6H1SVgusaD1jQdsMUySUU6apde0z7SobpYZKp4sThk4hxOWtO-bXhu1cNjg",
					"at://dholms.xyz", oldRot, dholmsSigning),
				cid:       "bafyreicwybxr6h6vkxpoarismso3liozdzswshmzcvl4tyckdazn5lxjte",
				createdAt: "2023-03-06T19:51:09.950Z",
			},
			{
				op: upd("bafyreicwybxr6h6vkxpoarismso3liozdzswshmzcvl4tyckdazn5lxjte",
					"lBXd8rHZ84hCuQysGdi_5A9C8yPHTHasPibO4DZiuZVrehs2hiBcjAL0srLSTsF1kvsHTw1ddai-QwH0Wd_drQ",
					"at://dholms.xyz",
					[]string{dholmsRecovery, "did:key:zQ3shpKnbdPx3g3CmPf5cRVTPe1HtSwVn5ish3wSnDPQCbLJK"},
					"did:key:zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"),
				cid:       "bafyreidfrpuegbqd5r56shka4duythb7phb6d7i3bck2dkeb5fjppwd7gi",
				createdAt: "2023-03-09T23:18:31.709Z",
			},
		},
	}
}

func bareOp(prev *string, sig, aka string, rot ...string) *Operation {
	return &Operation{
		RotationKeys:        rot,
		VerificationMethods: map[string]string{},
		AlsoKnownAs:         []string{aka},
		Services:            map[string]Service{},
		Prev:                prev,
		Sig:                 sig,
	}
}

// A recovery at exactly 72 hours after the operation it nullifies.
func vecNullificationAt72h() vecLog {
	c0 := "bafyreib5gcdoqnzkoylzwzsmhxdigizzl7nlwoe2fujd6aqkgn4yn5juee"
	c1 := "bafyreidygw4qxncobfaz54dujsdamppw5eyzfsjscvzzh62s4lgfdtwkhm"
	return vecLog{
		did: "did:plc:huyin2bxfj3bpg3gjq64nazd",
		entries: []vecEntry{
			{
				op: bareOp(nil, "SMt9lbnrIZphaVysWweU24bobCCZQmROnpSE4_9ZcUZda05TW9kR3povEIWL76_5l28LPphh9zOBnzuT6CsfJA", "at://op0",
					"did:key:zQ3shbhi3Ecu99Fo6apTVVAzV15RExDaDgoY3mTuQXQsCPGky",
					"did:key:zQ3shdDRwdy9yjepHMnhAmHXZ1sNHikyRUNbJBFmJdEHBSkm1"),
				cid:       c0,
				createdAt: "2025-07-25T14:40:41.627Z",
			},
			{
				op: bareOp(strp(c0), "5C6Wb29_El2d96XLoaJyBYczpSi4Y0iFiKx5vG6czV5eltBwPeQ2TT8B_EieXy_G3O_aRZrobUBKijQeQfop3g", "at://op1",
					"did:key:zQ3shhZw6NmJJhdWcWqxGfaLKBV7LbW5RVVxbMuQQt5EZExEv",
					"did:key:zQ3shQPH612ZLpKXu6wJ8Nq3xJcZ1KBngAYzV1ifvGFjyfGGM"),
				cid:       c1,
				createdAt: "2025-07-26T00:00:00.000Z",
			},
			{
				op: bareOp(strp(c1), "2JUYqTo-dhMxjvIZad2E7dspTfd4UJjIF1m4MecIaNAi3YwVERLQT6DBH4JGirSZOUZPsI9kRPFADG3FvRROOA", "at://op2",
					"did:key:zQ3shjndSKfWo811gPc6w7xgTQ1QZ1pSzRh9nFyYNTr2f8vad",
					"did:key:zQ3shNu1MTAyn751xRrPYgzYHMjmgxqJX7MaKD1sRyqmEG7Lr"),
				cid:       "bafyreifwu6mpycnlcwcp33pvfmwlba3bsinrvaiemjied2hotb24z7wk2y",
				nullified: true,
				createdAt: "2025-07-27T00:00:00.000Z",
			},
			{
				op: bareOp(strp(c1), "FFWR27ys_W2YaEOEQIFLaEWhf3V8rVR5Lh6F20UMn8AvsgS5eoT4nrY3D34hGJKBtkoy6FgNX2LjegFmwedmZQ", "at://op3",
					"did:key:zQ3shXNdU3wForFqrQSGGL4XpRhUTb3RAdQmYx3RFx6WqyiHR",
					"did:key:zQ3shQFNHvyMfEWFsEycbyU24KdLQxuHtMvDRLVnjwMQhTfGU"),
				cid:       "bafyreicethnkrcbd2xojssb76sppdnfxlwzzjkrf6f2fiixxglv7sik65e",
				createdAt: "2025-07-30T00:00:00.000Z",
			},
		},
	}
}

// A recovery that nullifies an operation that emptied the rotation keys.
func vecNullification() vecLog {
	c0 := "bafyreiguwtflhou46pupb3qtemh56x6o3fn3y7ym2q3jgoms35tdu2d5ga"
	k0 := "did:key:zQ3shwPdax6jKMbhtzbueGwSjc7RnjsmPcNB1vQUpbKUCN1t1"
	k1 := "did:key:zQ3shmMcsFLvSZQy2pSZFFKZNmQSNmyuSepPXMHpgTYrontu2"
	return vecLog{
		did: "did:plc:2s2mvm52ttz6r4hocmrq7x27",
		entries: []vecEntry{
			{
				op:        bareOp(nil, "1pTjQD5-LA4gN6tz1t7-28Tzct9NI-oYMN8QVUQkB7493j-vKeZnZO0YqNNBCXsORatmfKUXwteC9zW82mi_yw", "at://foo", k0, k1),
				cid:       c0,
				createdAt: "1970-01-01T00:00:00.000Z",
			},
			{
				op:        bareOp(strp(c0), "XfbRKnfzmJyRXUrajAISgdiJWNdNFMFgtDnlKvj-bIZhpfqGd39xiylJVXXu5Usw2cc2Js4EeSPh2xfhUQNxSA", "at://foo"),
				cid:       "bafyreicbxgoelatj24iyqnevm7v4f22utxb75p756ztyu5v7cjxlwti3oa",
				nullified: true,
				createdAt: "1970-01-01T00:00:01.000Z",
			},
			{
				op:        bareOp(strp(c0), "zCcbDgFbv5b0aGggLepLcARzNzH0sG6uuvq2GacyPsAsjDsLMZn6KmOxa50iWZEMRknQHsMYyMTS99eeTPu0fQ", "at://foo", k0, k1),
				cid:       "bafyreidef3g2vvlshwzf7vxjyxg3lraahujvhtkpo7y3g4br52ft3lzwem",
				createdAt: "1970-01-01T00:00:02.000Z",
			},
		},
	}
}

func vecTombstone() vecLog {
	c0 := "bafyreihqa4o4gsyai22ydms6j4cua6yr6tuc7trq2temvnycadk2daniru"
	return vecLog{
		did: "did:plc:6adr3q2labdllanslzhqkqd3",
		entries: []vecEntry{
			{
				op: bareOp(nil, "ZznbxHinpBI3NgEYWzXUXLA65s2U1ezJooreZlscHYQRfd4EMlijqhpikGMabs-81Tsy4Mt9Iscpmk7Uz13aAg", "at://op0",
					"did:key:zQ3shmWf4f6ZwzNyjUDYw4oFQjgHWZoYZDjJYtz75YfYYrphB",
					"did:key:zQ3shr2PwdoF6kbuYYymyZq6YbGWShiTXAkdMioCPdSdPL9NV"),
				cid:       c0,
				createdAt: "2025-07-25T15:50:58.440Z",
			},
			{
				op:        &Tombstone{Prev: c0, Sig: "iKFOLyEujXdHWujAAnwFhKfb9kkIcpMDGOV15eNWqlxLM2GtdQD3lVWCshTKWi0dF7InXGseVFDexS0kg0KmEQ"},
				cid:       "bafyreifafe44xylxagcom47xb3lrya5pysu3b7zfjmmmitiuimhmgmerze",
				createdAt: "2025-07-25T15:50:58.837Z",
			},
		},
	}
}

const p256Shared = "did:key:zDnaet3CLvFwasyRn1qaCJec6XDqh2pXE4fUoJpG19H9xauUf"

// An update that empties the rotation keys: allowed back then.
func vecEmptyRotationKeys() vecLog {
	c0 := "bafyreihygpghgzty7kgo5gpidscdd3p7krovysfy76uqfyildy5qy6xyqi"
	op0 := bareOp(nil, "kWGr1tLkLeFbi2sM1ECfIXVLE11U8F_2JbIjP6SO504Z2YVilrvr37AgtsfcPww_EuBacJoJDYbmwVTRoz3cPQ", "", p256Shared)
	op0.AlsoKnownAs = []string{}
	op1 := bareOp(strp(c0), "EJmgtA4PoFz6sXWz324x4f-46PbQJV0NR16_B69fbWVJb40wSBAakxJKUqvAQnvgMMZnWiL8LUdyEgFejSwdKA", "")
	op1.AlsoKnownAs = []string{}
	op1.RotationKeys = []string{}
	return vecLog{
		did: "did:plc:7az4y43gpd5iz3uz5aoiimpn",
		entries: []vecEntry{
			{op: op0, cid: c0, createdAt: "2025-07-22T16:42:57.772Z"},
			{op: op1, cid: "bafyreidhcvt64va2y7igfy5soymc4xtpoghdgv2oujv5f76js6sdwby6ta", createdAt: "2025-07-22T16:44:08.313Z"},
		},
	}
}

// A genesis operation listing the same rotation key twice.
func vecDuplicateRotationKeys() vecLog {
	op := bareOp(nil, "eYGQcdzFhATHh1wn9eNBjL5TRd7U-K_D3eyY3KPp2BcFrz_CMZ5PPoIN1P_HSO7m_66pmRcDiPPvBclDHQZ6tQ", "", p256Shared, p256Shared)
	op.AlsoKnownAs = []string{}
	return vecLog{
		did: "did:plc:fjhag55cvrg4no2optwsld2d",
		entries: []vecEntry{
			{op: op, cid: "bafyreibkjybxpivmjxdlwtt45usy6q6nutr3clatlbfejlnusqvmpsxm5y", createdAt: "2025-07-23T11:52:57.706Z"},
		},
	}
}

// A genesis operation whose k256 signature has a high S value: invalid.
func vecHighSK256() vecLog {
	op := bareOp(nil, "cDdgXcFwiJFhTzUyEhmvG4uCqy_UEqTXiWN29O3CiMXtfPnNo7Mg_BsK1iv4VBt010RwJg5mnDOK20T6m8ltDw", "at://high_s_k256",
		"did:key:zQ3shTBEaSruX6DJNAH3W9Weu95PYwrdQvmrHCSW9bLLZXrnw")
	return vecLog{
		did: "did:plc:t63fj6hb7mahe7qcvgbqhdnk",
		entries: []vecEntry{
			{op: op, cid: "bafyreie7wzkpryp3abzh4avjqmby3kuznuz3dwlqqgyfui25pecveba5oe", createdAt: "1970-01-01T00:00:00.000Z"},
		},
	}
}
