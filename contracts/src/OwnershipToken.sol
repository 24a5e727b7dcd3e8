// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title OwnershipToken
/// @notice ERC-20 ownership token of Contributor Ledger, with EIP-2612 permit. New tokens come only
/// from the reward distributor, which mints them when a contributor claims an anchored entitlement.
/// @dev 18 decimals. There is no burn and no other mint path, so `totalSupply()` equals the total
/// claimed through the distributor.
contract OwnershipToken is ERC20, ERC20Permit {
    /* STORAGE */

    /// @notice The only address allowed to mint, normally the RewardDistributor.
    address public immutable minter;

    /* ERRORS */

    /// @notice Thrown when an address other than `minter` calls `mint`.
    /// @param caller The rejected caller.
    error OnlyMinter(address caller);

    /// @notice Thrown when the token is deployed with the zero address as minter.
    error ZeroMinter();

    /// @notice Thrown when a mint would raise the total supply above the cap the minter passed.
    /// @param totalSupply The total supply the mint would reach, in base units.
    /// @param cap The highest total supply allowed, in base units.
    error MintAboveCap(uint256 totalSupply, uint256 cap);

    /* CONSTRUCTOR */

    /// @notice Deploys the token with name "Contributor Ownership" and symbol "COWN".
    /// @param minter_ The address allowed to mint. The deployer computes the distributor's future
    /// address so that the token can be deployed first.
    constructor(address minter_) ERC20("Contributor Ownership", "COWN") ERC20Permit("Contributor Ownership") {
        if (minter_ == address(0)) revert ZeroMinter();
        minter = minter_;
    }

    /* EXTERNAL */

    /// @notice Mints `amount` base units to `to`, as long as the total supply stays at most `cap`.
    /// @dev Only `minter` may call this. Reverts with the ERC20InvalidReceiver error when `to` is
    /// the zero address.
    /// @param to The receiving account.
    /// @param amount The amount to mint, in base units.
    /// @param cap The highest total supply allowed after the mint, in base units.
    function mint(address to, uint256 amount, uint256 cap) external {
        if (msg.sender != minter) revert OnlyMinter(msg.sender);
        uint256 newSupply = totalSupply() + amount;
        if (newSupply > cap) revert MintAboveCap(newSupply, cap);
        _mint(to, amount);
    }
}
