// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {OwnershipToken} from "./OwnershipToken.sol";
import {ErrorsLib} from "./libraries/ErrorsLib.sol";
import {EventsLib} from "./libraries/EventsLib.sol";

/// @title RewardDistributor
/// @notice Settles Contributor Ledger epochs on chain. The anchorer posts, for each epoch in turn, the
/// root of a claims tree of cumulative token entitlements and the root of a contributions tree. A
/// claims root becomes active once its challenge period has passed, and a guardian can revoke it
/// before that. Anyone can then claim for an account: the contract mints the difference between
/// the account's cumulative entitlement and what it already claimed. An account can also sign an
/// EIP-712 claim that a relayer sends for it, with the tokens minted to a recipient it chose.
/// @dev Both trees use the OpenZeppelin StandardMerkleTree format: leaf =
/// keccak256(bytes.concat(keccak256(abi.encode(values)))), sorted-pair hashing.
contract RewardDistributor is AccessControl, EIP712, Nonces, Pausable {
    /* TYPES */

    /// @notice The anchored data of one epoch.
    /// @param claimsRoot Root of the tree of (address account, uint256 cumulativeAmount) leaves.
    /// @param contributionsRoot Root of the tree of (bytes32 sessionId, bytes32 contentHash,
    /// address contributor, uint256 points) leaves, or zero for an epoch without contributions.
    /// @param totalEntitled Sum of all cumulative entitlements in the claims tree, in base units.
    /// @param activatesAt Unix time, in seconds, from which claims may use `claimsRoot`.
    /// @param revoked Whether the guardian revoked these roots. A revoked epoch number is anchored
    /// again with new roots, which clears the flag.
    struct Epoch {
        bytes32 claimsRoot;
        bytes32 contributionsRoot;
        uint128 totalEntitled;
        uint64 activatesAt;
        bool revoked;
    }

    /* STORAGE */

    /// @notice Role allowed to anchor epochs.
    bytes32 public constant ANCHORER_ROLE = keccak256("ANCHORER_ROLE");

    /// @notice Role allowed to revoke an epoch during its challenge period.
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");

    /// @notice Role allowed to pause and unpause claims.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice EIP-712 type hash of a signed claim.
    /// @dev The signer is `account`. `nonce` must equal `nonces(account)`; `deadline` is a Unix time
    /// in seconds, inclusive.
    bytes32 public constant CLAIM_TYPEHASH = keccak256(
        "Claim(address account,address recipient,uint256 cumulativeAmount,uint256 nonce,uint256 deadline)"
    );

    /// @notice The token minted on claims. This contract must be its minter.
    OwnershipToken public immutable token;

    /// @notice Tokens emitted per epoch by the schedule, in base units.
    uint256 public immutable emissionPerEpoch;

    /// @notice Seconds between an anchor and the activation of its claims root.
    uint64 public immutable challengePeriod;

    // The next three variables share one storage slot with the `_paused` flag of Pausable, so a
    // claim reads the pause flag, the latest epoch and its activation time from one slot. Keep
    // Pausable last among the base contracts and these variables declared first, in this order.

    /// @notice The latest anchored, not revoked epoch, or 0 before the first anchor. Epochs start at 1.
    uint64 public lastEpoch;

    /// @notice Copy of `_epochs[lastEpoch].activatesAt`, kept here so a claim need not read it.
    uint64 internal _lastActivatesAt;

    /// @notice Always 1. It keeps the slot of `lastEpoch` non-zero from deployment, so the first
    /// anchor updates the slot for 2,900 gas instead of paying 20,000 gas for a zero to non-zero write.
    uint8 internal _nonZeroSlotMarker = 1;

    /// @notice Anchored data per epoch number.
    mapping(uint64 epoch => Epoch) internal _epochs;

    /// @notice Cumulative amount claimed per account, in base units.
    mapping(address account => uint256 amount) public claimed;

    /* CONSTRUCTOR */

    /// @notice Deploys the distributor and grants the roles.
    /// @dev The guardian also receives PAUSER_ROLE. The admin can grant and revoke every role.
    /// @param token_ The OwnershipToken whose minter is this contract.
    /// @param admin Receives DEFAULT_ADMIN_ROLE.
    /// @param anchorer Receives ANCHORER_ROLE.
    /// @param guardian Receives GUARDIAN_ROLE and PAUSER_ROLE.
    /// @param emissionPerEpoch_ Tokens emitted per epoch, in base units; must be positive.
    /// @param challengePeriod_ Seconds between an anchor and the activation of its claims root.
    constructor(
        address token_,
        address admin,
        address anchorer,
        address guardian,
        uint256 emissionPerEpoch_,
        uint64 challengePeriod_
    ) EIP712("RewardDistributor", "1") {
        if (token_ == address(0) || admin == address(0) || anchorer == address(0) || guardian == address(0)) {
            revert ErrorsLib.ZeroAddress();
        }
        if (emissionPerEpoch_ == 0) revert ErrorsLib.ZeroEmission();

        token = OwnershipToken(token_);
        emissionPerEpoch = emissionPerEpoch_;
        challengePeriod = challengePeriod_;

        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ANCHORER_ROLE, anchorer);
        _grantRole(GUARDIAN_ROLE, guardian);
        _grantRole(PAUSER_ROLE, guardian);
    }

    /* EXTERNAL */

    /// @notice Mints to `account` the part of its cumulative entitlement that it has not claimed yet.
    /// @dev Anyone may send the claim; the tokens always go to `account`. The proof is checked
    /// against the claims root of `activeEpoch()`, never against a pending one.
    /// @param account The account entitled in the claims tree.
    /// @param cumulativeAmount The account's cumulative entitlement in the claims tree, in base units.
    /// @param proof The Merkle proof of the leaf (account, cumulativeAmount).
    /// @return amount The amount minted, in base units.
    function claim(address account, uint256 cumulativeAmount, bytes32[] calldata proof)
        external
        whenNotPaused
        returns (uint256 amount)
    {
        return _claim(account, account, cumulativeAmount, proof);
    }

    /// @notice Claims for `account` with its EIP-712 signature and mints to `recipient`, so that a
    /// relayer can pay the gas for an account that has none.
    /// @dev The signature covers (account, recipient, cumulativeAmount, nonce, deadline) under this
    /// contract's EIP-712 domain. Contract accounts sign through ERC-1271. Each signature works
    /// once: it uses up `nonce`, and a later claim needs `nonces(account)`.
    /// @param account The account entitled in the claims tree, and the signer.
    /// @param recipient The address that receives the tokens; must not be zero.
    /// @param cumulativeAmount The account's cumulative entitlement in the claims tree, in base units.
    /// @param nonce The account's current nonce, `nonces(account)`.
    /// @param deadline The last Unix time, in seconds, at which the signature is accepted.
    /// @param proof The Merkle proof of the leaf (account, cumulativeAmount).
    /// @param signature The account's signature of the typed `Claim`.
    /// @return amount The amount minted, in base units.
    function claimWithSig(
        address account,
        address recipient,
        uint256 cumulativeAmount,
        uint256 nonce,
        uint256 deadline,
        bytes32[] calldata proof,
        bytes calldata signature
    ) external whenNotPaused returns (uint256 amount) {
        if (block.timestamp > deadline) revert ErrorsLib.SignatureExpired(deadline);
        if (recipient == address(0)) revert ErrorsLib.ZeroAddress();

        bytes32 digest =
            _hashTypedDataV4(keccak256(abi.encode(CLAIM_TYPEHASH, account, recipient, cumulativeAmount, nonce, deadline)));
        if (!SignatureChecker.isValidSignatureNowCalldata(account, digest, signature)) {
            revert ErrorsLib.InvalidSignature(account);
        }
        _useCheckedNonce(account, nonce);

        emit EventsLib.ClaimRelayed(account, recipient, nonce, msg.sender);

        return _claim(account, recipient, cumulativeAmount, proof);
    }

    /// @notice Returns the latest epoch whose claims root is active: anchored, not revoked and past
    /// its challenge period.
    /// @return The active epoch, or 0 when no claims root is active yet.
    function activeEpoch() public view returns (uint64) {
        uint64 latest = lastEpoch;
        if (latest == 0 || block.timestamp >= _lastActivatesAt) return latest;

        // The previous epoch was active when the latest one was anchored, and stays active.
        return latest - 1;
    }

    /// @notice Returns the claims root that claims are verified against now.
    /// @return The claims root of `activeEpoch()`, or zero when no epoch is active.
    function activeClaimsRoot() external view returns (bytes32) {
        return _epochs[activeEpoch()].claimsRoot;
    }

    /// @notice Returns the claims root that claims are verified against now; same as `activeClaimsRoot()`.
    /// @return The claims root of `activeEpoch()`, or zero when no epoch is active.
    function claimsRoot() external view returns (bytes32) {
        return _epochs[activeEpoch()].claimsRoot;
    }

    /// @notice Returns the anchored data of `epoch`.
    /// @dev A revoked epoch keeps its data, with `revoked` set, until it is anchored again.
    /// @param epoch The epoch number.
    /// @return The epoch's roots, total entitlement, activation time and revoked flag; all zero
    /// for an epoch never anchored.
    function epochs(uint64 epoch) external view returns (Epoch memory) {
        return _epochs[epoch];
    }

    /// @notice Returns the tokens minted through claims so far.
    /// @dev Equal to the token's total supply: this contract is the token's only minter and the
    /// token has no burn, so every token in existence was minted by a claim here.
    /// @return The total claimed, in base units.
    function totalClaimed() public view returns (uint256) {
        return token.totalSupply();
    }

    /// @notice Checks a contribution proof against the contributions root of `epoch`.
    /// @dev Accepts the latest epoch while it is still pending. Returns false for an epoch that is
    /// not anchored, revoked or has a zero contributions root.
    /// @param epoch The epoch whose contributions root to check against.
    /// @param sessionId The session UUID, its 16 bytes left-padded to 32.
    /// @param contentHash The SHA-256 of the encrypted recording.
    /// @param contributor The contributor credited for the session.
    /// @param points The points the session scored.
    /// @param proof The Merkle proof of the leaf (sessionId, contentHash, contributor, points).
    /// @return Whether the proof leads from the leaf to the epoch's contributions root.
    function verifyContribution(
        uint64 epoch,
        bytes32 sessionId,
        bytes32 contentHash,
        address contributor,
        uint256 points,
        bytes32[] calldata proof
    ) external view returns (bool) {
        if (epoch == 0 || epoch > lastEpoch) return false;

        bytes32 root = _epochs[epoch].contributionsRoot;
        if (root == bytes32(0)) return false;

        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(sessionId, contentHash, contributor, points))));
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    /// @notice Returns the emission of epochs 1 to `epoch` together.
    /// @param epoch The last epoch counted.
    /// @return `epoch * emissionPerEpoch`, in base units.
    function cumulativeEmission(uint64 epoch) public view returns (uint256) {
        return uint256(epoch) * emissionPerEpoch;
    }

    /* ADMIN */

    /// @notice Posts the roots of the next epoch. Its claims root becomes active after `challengePeriod`.
    /// @dev Only ANCHORER_ROLE. Requires `epoch == lastEpoch + 1` and an active previous epoch.
    /// Zero roots are accepted: an epoch without contributions has a zero contributions root, and an
    /// epoch without entitlement changes posts the previous claims root again.
    /// @param epoch The epoch to anchor.
    /// @param epochClaimsRoot The root of the tree of (account, cumulativeAmount) leaves.
    /// @param epochContributionsRoot The root of the tree of contribution leaves, or zero.
    /// @param totalEntitled The sum of all cumulative entitlements in the claims tree, in base
    /// units; at most `cumulativeEmission(epoch)`.
    function anchor(uint64 epoch, bytes32 epochClaimsRoot, bytes32 epochContributionsRoot, uint256 totalEntitled)
        external
        onlyRole(ANCHORER_ROLE)
    {
        uint64 latest = lastEpoch;
        if (epoch != latest + 1) revert ErrorsLib.NonConsecutiveEpoch(latest + 1, epoch);

        uint64 latestActivatesAt = _lastActivatesAt;
        if (block.timestamp < latestActivatesAt) revert ErrorsLib.PreviousEpochPending(latest, latestActivatesAt);

        uint256 emission = cumulativeEmission(epoch);
        if (totalEntitled > emission) revert ErrorsLib.EntitlementAboveEmission(totalEntitled, emission);

        uint64 activatesAt = SafeCast.toUint64(block.timestamp + challengePeriod);
        _epochs[epoch] = Epoch({
            claimsRoot: epochClaimsRoot,
            contributionsRoot: epochContributionsRoot,
            totalEntitled: SafeCast.toUint128(totalEntitled),
            activatesAt: activatesAt,
            revoked: false
        });
        lastEpoch = epoch;
        _lastActivatesAt = activatesAt;

        emit EventsLib.EpochAnchored(epoch, epochClaimsRoot, epochContributionsRoot, totalEntitled, activatesAt);
    }

    /// @notice Revokes the latest epoch during its challenge period, so that it can be anchored
    /// again with corrected roots.
    /// @dev Only GUARDIAN_ROLE. `lastEpoch` goes back to `epoch - 1`.
    /// @param epoch The epoch to revoke; must be `lastEpoch` and still pending.
    function revoke(uint64 epoch) external onlyRole(GUARDIAN_ROLE) {
        uint64 latest = lastEpoch;
        if (epoch == 0 || epoch != latest) revert ErrorsLib.NotLatestEpoch(latest, epoch);

        uint64 latestActivatesAt = _lastActivatesAt;
        if (block.timestamp >= latestActivatesAt) revert ErrorsLib.EpochAlreadyActive(epoch, latestActivatesAt);

        Epoch storage revokedEpoch = _epochs[epoch];
        revokedEpoch.revoked = true;

        uint64 previous = epoch - 1;
        lastEpoch = previous;
        _lastActivatesAt = _epochs[previous].activatesAt;

        emit EventsLib.EpochRevoked(epoch, revokedEpoch.claimsRoot, revokedEpoch.contributionsRoot);
    }

    /// @notice Stops claims. Anchoring and revocation go on.
    /// @dev Only PAUSER_ROLE. Emits Paused.
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Lets claims resume.
    /// @dev Only PAUSER_ROLE. Emits Unpaused.
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /* INTERNAL */

    /// @dev Verifies the leaf (account, cumulativeAmount) against the active claims root, records
    /// the new cumulative amount and mints the difference to `recipient`.
    function _claim(address account, address recipient, uint256 cumulativeAmount, bytes32[] calldata proof)
        internal
        returns (uint256 amount)
    {
        uint64 epoch = activeEpoch();
        if (epoch == 0) revert ErrorsLib.NoActiveEpoch();

        bytes32 leaf = _claimLeaf(account, cumulativeAmount);
        if (!_verifyClaimProof(proof, _epochs[epoch].claimsRoot, leaf)) revert ErrorsLib.InvalidProof();

        uint256 alreadyClaimed = claimed[account];
        if (cumulativeAmount <= alreadyClaimed) {
            revert ErrorsLib.NothingToClaim(account, cumulativeAmount, alreadyClaimed);
        }
        unchecked {
            amount = cumulativeAmount - alreadyClaimed;
        }

        claimed[account] = cumulativeAmount;

        emit EventsLib.Claimed(account, amount, cumulativeAmount, epoch);

        // The token's supply is the total claimed (see `totalClaimed()`), so the token checks the
        // cap while it mints. A check here would cost an extra call, or a counter in storage.
        token.mint(recipient, amount, cumulativeEmission(epoch));
    }

    /// @dev Hashes a claims tree leaf as the StandardMerkleTree does for (address, uint256) values:
    /// keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeAmount)))), in scratch space.
    function _claimLeaf(address account, uint256 cumulativeAmount) internal pure returns (bytes32 leaf) {
        assembly ("memory-safe") {
            mstore(0x00, account)
            mstore(0x20, cumulativeAmount)
            mstore(0x00, keccak256(0x00, 0x40))
            leaf := keccak256(0x00, 0x20)
        }
    }

    /// @dev Returns whether `proof` leads from `leaf` to `root` with sorted-pair hashing, as
    /// `MerkleProof.verifyCalldata` does. Each step hashes the smaller node first without a branch:
    /// the current node goes to offset 0x20 when the sibling is smaller, else to 0x00. The ABI
    /// decoder has already checked that the proof lies inside the calldata.
    function _verifyClaimProof(bytes32[] calldata proof, bytes32 root, bytes32 leaf) internal pure returns (bool valid) {
        assembly ("memory-safe") {
            let node := leaf
            let end := add(proof.offset, shl(5, proof.length))
            for { let item := proof.offset } lt(item, end) { item := add(item, 0x20) } {
                let sibling := calldataload(item)
                let nodeOffset := shl(5, lt(sibling, node))
                mstore(nodeOffset, node)
                mstore(xor(nodeOffset, 0x20), sibling)
                node := keccak256(0x00, 0x40)
            }
            valid := eq(node, root)
        }
    }
}
